//! A small Server-Sent Events parser (the subset api.md's stream uses: `event`, `id`,
//! `data`, comments). Fed arbitrary chunks; yields complete events one at a time, so the
//! reader decides how many it holds. An event (or a line) larger than the limit is an
//! error, not an ever-growing buffer: a broken or hostile server cannot make it grow
//! without bound.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// The event being read is larger than the parser's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge {
    pub limit: usize,
}

pub struct SseParser {
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    start: usize,
    current: SseEvent,
    has_data: bool,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(crate::limits::MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            buffer: Vec::new(),
            start: 0,
            current: SseEvent::default(),
            has_data: false,
            max_event_bytes,
        }
    }

    /// Adds bytes from the stream; read the events they complete with `next_event`.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(chunk);
    }

    /// The bytes the event being read keeps so far.
    fn held(&self) -> usize {
        self.current.event.len()
            + self.current.id.as_ref().map_or(0, String::len)
            + self.current.data.len()
    }

    /// The next complete event in what was fed, or None until more arrives.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        let too_large = EventTooLarge {
            limit: self.max_event_bytes,
        };
        loop {
            let rest = &self.buffer[self.start..];
            let Some(pos) = rest.iter().position(|&b| b == b'\n') else {
                // An unfinished line counts towards its event: a line that never ends is
                // refused as soon as it passes the limit.
                if rest.len() + self.held() > self.max_event_bytes {
                    return Err(too_large);
                }
                return Ok(None);
            };
            let mut line = &rest[..pos];
            self.start += pos + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.len() + self.held() > self.max_event_bytes {
                return Err(too_large);
            }
            let line = String::from_utf8_lossy(line).into_owned();
            if line.is_empty() {
                let done = std::mem::take(&mut self.current);
                let had_data = std::mem::replace(&mut self.has_data, false);
                if had_data {
                    let mut ev = done;
                    if ev.event.is_empty() {
                        ev.event = "message".into();
                    }
                    return Ok(Some(ev));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.current.event = value.to_owned(),
                "id" => self.current.id = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(p: &mut SseParser) -> Vec<SseEvent> {
        std::iter::from_fn(|| p.next_event().unwrap()).collect()
    }

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut p = SseParser::default();
        p.feed(b": heartbeat\n\nevent: bal");
        assert!(all(&mut p).is_empty());
        p.feed(b"ance\nid: 7\ndata: {\"a\":1}\n\nevent: notice\r\ndata: x\r\ndata: y\r\n\r\n");
        let evs = all(&mut p);
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0],
            SseEvent {
                event: "balance".into(),
                id: Some("7".into()),
                data: "{\"a\":1}".into()
            }
        );
        assert_eq!(evs[1].data, "x\ny");
    }

    #[test]
    fn an_event_over_the_limit_is_refused_whether_its_line_ends_or_not() {
        let mut p = SseParser::new(100);
        p.feed(b"event: notice\ndata: ");
        p.feed(&[b'x'; 80]);
        assert_eq!(p.next_event(), Ok(None), "80 bytes are within the limit");
        p.feed(&[b'x'; 20]);
        assert_eq!(p.next_event(), Err(EventTooLarge { limit: 100 }));

        let mut p = SseParser::new(100);
        for _ in 0..10 {
            p.feed(b"data: 0123456789\n");
        }
        assert_eq!(p.next_event(), Err(EventTooLarge { limit: 100 }));
    }

    #[test]
    fn comments_and_finished_events_do_not_count_towards_the_limit() {
        let mut p = SseParser::new(64);
        for i in 0..1000 {
            p.feed(b": keep-alive\n\n");
            p.feed(format!("event: balance\nid: {i}\ndata: {{}}\n\n").as_bytes());
            assert!(p.next_event().unwrap().is_some());
            assert_eq!(p.next_event(), Ok(None));
        }
    }
}
