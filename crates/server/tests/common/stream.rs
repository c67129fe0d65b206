//! The live event stream (`GET /v1/events`), read as a client reads it: a blocking HTTP
//! stream, parsed line by line, with a timeout so a broken stream fails instead of hanging.

use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::time::Duration;

use super::Server;

pub struct Event {
    pub event: String,
    pub id: u64,
    pub data: Value,
}

pub struct Stream {
    lines: Lines<BufReader<reqwest::blocking::Response>>,
}

impl Stream {
    pub fn open(s: &Server, token: &str, last_event_id: Option<u64>) -> Stream {
        // No stream in these tests needs to live longer than this.
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut req = http
            .get(s.url("/v1/events"))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Stream {
            lines: BufReader::new(resp).lines(),
        }
    }

    /// The next event; heartbeats and other comments are skipped.
    pub fn next(&mut self) -> Event {
        let (mut event, mut id, mut data) = (None, None, Vec::new());
        loop {
            let line = self
                .lines
                .next()
                .expect("the stream ended")
                .expect("no event in time");
            if line.is_empty() {
                if event.is_some() || !data.is_empty() {
                    break;
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "event" => event = Some(value),
                "id" => id = Some(value.parse::<u64>().expect("a numeric id")),
                "data" => data.push(value),
                _ => {}
            }
        }
        Event {
            event: event.unwrap_or_else(|| "message".into()),
            id: id.expect("every event carries an id"),
            data: serde_json::from_str(&data.join("\n")).expect("JSON data"),
        }
    }

    pub fn next_of(&mut self, kind: &str) -> Event {
        let e = self.next();
        assert_eq!(
            e.event, kind,
            "expected a `{kind}` event, got {}: {}",
            e.event, e.data
        );
        e
    }
}
