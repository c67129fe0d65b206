//! Moving the WAL into the database file (checkpointing) off the writer's thread, often.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, and
//! every request of that batch, and every one queued behind it, waits for it. So a thread
//! of its own checkpoints, on a connection of its own, and the writer keeps a large
//! automatic checkpoint only as a backstop should this thread fall behind.
//!
//! How often matters more than it seems. Each time a checkpoint has copied the whole WAL,
//! the writer's next commit starts the WAL over from its beginning and, before writing
//! there, fsyncs it (SQLite's guard against out-of-order writes after a restart); that
//! fsync waits for every WAL page written since the checkpoint synced the file, and the
//! whole server waits for the writer. The longer between checkpoints, the more there is to
//! write back: under a steady load of charges, checkpointing every 100 ms gave a p99 of
//! 15–20 ms, every 10 ms a p99 of 3–6 ms and more charges per second (bench/README.md). So
//! while charges come in this thread checkpoints every [`BUSY`]; when the WAL stops
//! changing it backs off to [`IDLE`], so an idle server is not woken a hundred times a
//! second. Durability is unchanged: a commit is in the WAL before it is acknowledged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// The pause between checkpoints while the WAL is growing.
const BUSY: Duration = Duration::from_millis(10);
/// The longest pause, reached by doubling while the WAL does not change.
const IDLE: Duration = Duration::from_secs(1);
/// The writer's own automatic checkpoint, kept only as a backstop.
const WRITER_BACKSTOP_BYTES: i64 = 32 << 20;

/// Starts the checkpoint thread and lowers the writer's automatic checkpoint to a backstop.
/// Without the thread, the writer checkpoints as SQLite does by default. The thread ends
/// when the database file is gone.
pub fn start(writer: &Connection, path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    let path = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || run(conn, path));
    match spawned {
        Ok(_) => {
            let page: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            writer.pragma_update(
                None,
                "wal_autocheckpoint",
                WRITER_BACKSTOP_BYTES / page.max(512),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the checkpoint thread; the writer checkpoints");
            Ok(())
        }
    }
}

fn run(conn: Connection, path: PathBuf) {
    let mut pause = BUSY;
    let mut last = None;
    while path.exists() {
        std::thread::sleep(pause);
        match passive(&conn) {
            Ok(wal) => {
                pause = next_pause(pause, last == Some(wal));
                last = Some(wal);
            }
            // Backing off here too: a failing disk gets a warning a second, not a hundred.
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed");
                pause = next_pause(pause, true);
            }
        }
    }
}

/// `BUSY` again as soon as the WAL changed; otherwise twice the pause, up to `IDLE`.
fn next_pause(pause: Duration, unchanged: bool) -> Duration {
    if unchanged {
        (pause * 2).min(IDLE)
    } else {
        BUSY
    }
}

/// What `PRAGMA wal_checkpoint` reports: frames in the WAL, and how many of them are in
/// the database file. A commit, or the WAL starting over, changes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Wal {
    frames: i64,
    copied: i64,
}

fn passive(conn: &Connection) -> rusqlite::Result<Wal> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Wal {
            frames: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_pause_doubles_to_idle_while_nothing_changes_and_drops_back_on_a_write() {
        let mut pause = BUSY;
        let mut seen = vec![pause];
        for _ in 0..10 {
            pause = next_pause(pause, true);
            seen.push(pause);
        }
        assert_eq!(seen[1], BUSY * 2);
        assert_eq!(*seen.last().unwrap(), IDLE);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(next_pause(IDLE, false), BUSY);
    }

    #[test]
    fn a_checkpoint_reports_what_it_copied_and_a_commit_changes_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let writer = crate::store::open(&db, crate::store::Durability::Process).unwrap();
        start(&writer, &db).unwrap();
        let backstop: i64 = writer
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(backstop, WRITER_BACKSTOP_BYTES / 4096);

        let reader = Connection::open(&db).unwrap();
        let before = passive(&reader).unwrap();
        assert_eq!(before.frames, before.copied, "{before:?}");
        writer
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let after = passive(&reader).unwrap();
        assert_ne!(after, before);
        assert_eq!(after.frames, after.copied, "{after:?}");
        assert!(after.frames > 0);
    }
}
