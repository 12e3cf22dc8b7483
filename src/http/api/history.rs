//! Pages of the alert history, read from the history file and its rotated
//! predecessors, oldest first.
//!
//! An event's time is when the alert opened (for an opening) or closed (for
//! a closing). Pages are in (time, alert id, opening before closing) order;
//! `since` is inclusive and `next_since` is where the next page starts. A
//! page never ends inside a millisecond, so paging by `next_since` misses
//! nothing — unless more than `limit` events share one millisecond, which
//! the page then says (`split_millisecond`).

use std::collections::{BinaryHeap, HashSet};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::alert::{Alert, AlertEvent, AlertKind, Transition};
use crate::sinks::history::rotated;
use crate::sinks::lines::{self, Line, MAX_LINE};

/// Most events on one page.
pub const MAX_LIMIT: usize = 1000;

/// One event with the time it is ordered by.
#[derive(Debug, Serialize)]
pub struct Event {
    pub time_ms: u64,
    pub event: Transition,
    pub alert: Alert,
    /// What was done, for a mitigation event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<crate::mitigation::Action>,
}

/// One page.
#[derive(Debug, Serialize)]
pub struct Page {
    pub since: u64,
    pub limit: usize,
    pub events: Vec<Event>,
    /// More events follow; ask again with `since = next_since`.
    pub more: bool,
    pub next_since: u64,
    /// The page had to end inside a millisecond: events of that millisecond
    /// past the page are not reachable by paging.
    pub split_millisecond: bool,
    pub files_read: usize,
    /// Lines that were not events (torn or foreign).
    pub skipped_lines: usize,
}

/// The order of events: time, then id, then opening before closing.
type Key = (u64, u64, u8);

struct Item(Key, AlertEvent);

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

fn key(ev: &AlertEvent) -> Key {
    match ev.event {
        Transition::Open => (ev.alert.start_ms, ev.alert.id, 0),
        Transition::Close => (
            ev.alert.end_ms.unwrap_or(ev.alert.last_update_ms),
            ev.alert.id,
            1,
        ),
        Transition::Mitigation => (
            ev.mitigation
                .as_ref()
                .map_or(ev.alert.last_update_ms, |m| m.at_ms),
            ev.alert.id,
            2 + ev.mitigation.as_ref().map_or(0, |m| m.what as u8),
        ),
    }
}

/// The files in time order: the oldest rotated one first, `file` last.
fn files(path: &Path, keep: u32) -> Vec<PathBuf> {
    let mut v = rotated(path, keep);
    v.reverse();
    v.push(path.to_path_buf());
    v
}

/// Reads one page. Memory stays at `limit` events whatever the files hold.
pub fn read_page(
    path: &Path,
    keep: u32,
    since: u64,
    limit: usize,
    kind: Option<AlertKind>,
) -> io::Result<Page> {
    let mut pager = Pager::new(since, limit, kind);
    for f in files(path, keep) {
        let file =
            match crate::config::file::open_regular(&f, std::fs::OpenOptions::new().read(true)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", f.display()))),
            };
        pager.read(BufReader::new(file))?;
    }
    Ok(pager.page())
}

/// One page gathered from files read in time order.
pub struct Pager {
    since: u64,
    limit: usize,
    kind: Option<AlertKind>,
    // The `limit + 1` smallest keys seen, the largest on top to be pushed out.
    heap: BinaryHeap<Item>,
    // A rotated file starts with the alerts still open: the same opening
    // twice, once in each file.
    held: HashSet<Key>,
    files_read: usize,
    skipped: usize,
    max_line: usize,
}

impl Pager {
    pub fn new(since: u64, limit: usize, kind: Option<AlertKind>) -> Pager {
        let limit = limit.clamp(1, MAX_LIMIT);
        Pager {
            since,
            limit,
            kind,
            heap: BinaryHeap::with_capacity(limit + 2),
            held: HashSet::new(),
            files_read: 0,
            skipped: 0,
            max_line: MAX_LINE,
        }
    }

    /// Lines longer than `n` bytes are skipped (default [`MAX_LINE`]).
    pub fn max_line(mut self, n: usize) -> Pager {
        self.max_line = n;
        self
    }

    /// Reads one file's lines; lines too long to be events are skipped
    /// without being held, a torn last line is skipped.
    pub fn read(&mut self, mut r: impl BufRead) -> io::Result<()> {
        self.files_read += 1;
        let mut line = Vec::new();
        loop {
            let (what, _) = lines::next(&mut r, &mut line, self.max_line)?;
            match what {
                Line::End => break,
                Line::Torn => {
                    self.skipped += 1;
                    break;
                }
                Line::TooLong => {
                    self.skipped += 1;
                    continue;
                }
                // What a write cut short leaves when it cannot be cut off.
                Line::Whole if line == b"\n" => continue,
                Line::Whole => {}
            }
            let Ok(ev) = serde_json::from_slice::<AlertEvent>(&line) else {
                self.skipped += 1;
                continue;
            };
            self.offer(ev);
        }
        Ok(())
    }

    fn offer(&mut self, ev: AlertEvent) {
        if self.kind.is_some_and(|k| ev.alert.kind != k) {
            return;
        }
        let k = key(&ev);
        if k.0 < self.since || self.held.contains(&k) {
            return;
        }
        if self.heap.len() > self.limit {
            if self.heap.peek().is_some_and(|top| top.0 <= k) {
                return;
            }
            if let Some(out) = self.heap.pop() {
                self.held.remove(&out.0);
            }
        }
        self.held.insert(k);
        self.heap.push(Item(k, ev));
    }

    /// The page. `next_since` never goes back: an event at the last
    /// millisecond there is (`u64::MAX`) ends the paging instead of
    /// wrapping it around to the start.
    pub fn page(self) -> Page {
        let Pager {
            since,
            limit,
            heap,
            files_read,
            skipped,
            ..
        } = self;
        let mut v = heap.into_sorted_vec();
        let mut more = v.len() > limit;
        let mut split = false;
        let next_since;
        if more {
            let boundary = v[limit].0.0;
            let keep_n = v[..limit].iter().take_while(|i| i.0.0 < boundary).count();
            if keep_n == 0 {
                split = true;
                v.truncate(limit);
                match boundary.checked_add(1) {
                    Some(n) => next_since = n,
                    None => {
                        // Nothing can come after the last millisecond.
                        next_since = boundary;
                        more = false;
                    }
                }
            } else {
                v.truncate(keep_n);
                next_since = boundary;
            }
        } else {
            next_since = v.last().map_or(since, |i| i.0.0.saturating_add(1));
        }
        Page {
            since,
            limit,
            events: v
                .into_iter()
                .map(|Item(k, ev)| Event {
                    time_ms: k.0,
                    event: ev.event,
                    alert: ev.alert,
                    mitigation: ev.mitigation,
                })
                .collect(),
            more,
            next_since,
            split_millisecond: split,
            files_read,
            skipped_lines: skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ev(id: u64, open: bool, start: u64, end: u64) -> String {
        let kind = if id % 2 == 0 {
            AlertKind::Traffic
        } else {
            AlertKind::PortScan
        };
        let a = Alert {
            start_ms: start,
            last_update_ms: end,
            end_ms: (!open).then_some(end),
            ..Alert::sample(id, kind, "10.0.0.1")
        };
        let e = AlertEvent {
            event: if open {
                Transition::Open
            } else {
                Transition::Close
            },
            alert: a,
            mitigation: None,
        };
        format!("{}\n", serde_json::to_string(&e).unwrap())
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ta-hist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn pages_cover_rotated_files_without_duplicates_or_gaps() {
        let d = dir("pages");
        let p = d.join("alerts.jsonl");
        // .2 is oldest. Alert 3 stays open across the rotation into the
        // current file, which repeats its opening.
        std::fs::write(
            d.join("alerts.jsonl.2"),
            ev(1, true, 100, 0) + &ev(1, false, 100, 200) + &ev(2, true, 300, 0),
        )
        .unwrap();
        std::fs::write(
            d.join("alerts.jsonl.1"),
            ev(2, false, 300, 400) + &ev(3, true, 400, 0) + "{torn",
        )
        .unwrap();
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(
            (ev(3, true, 400, 0) + &ev(4, true, 400, 0) + &ev(3, false, 400, 900)).as_bytes(),
        )
        .unwrap();

        let all = read_page(&p, 2, 0, 100, None).unwrap();
        let keys: Vec<(u64, u64)> = all.events.iter().map(|e| (e.time_ms, e.alert.id)).collect();
        assert_eq!(
            keys,
            [
                (100, 1),
                (200, 1),
                (300, 2),
                (400, 2),
                (400, 3),
                (400, 4),
                (900, 3)
            ]
        );
        assert_eq!(
            (all.more, all.next_since, all.files_read, all.skipped_lines),
            (false, 901, 3, 1)
        );

        // Pages of 3: the second would end inside ms 400, so it stops before.
        let p1 = read_page(&p, 2, 0, 3, None).unwrap();
        assert_eq!(p1.events.len(), 3);
        assert!(p1.more);
        let p2 = read_page(&p, 2, p1.next_since, 3, None).unwrap();
        assert_eq!(p2.events.len(), 3, "{p2:?}");
        assert!(p2.events.iter().all(|e| e.time_ms == 400));
        let p3 = read_page(&p, 2, p2.next_since, 3, None).unwrap();
        assert_eq!(
            p3.events.iter().map(|e| e.time_ms).collect::<Vec<_>>(),
            [900]
        );
        assert!(!p3.more);

        let two = read_page(&p, 2, 300, 2, None).unwrap();
        assert_eq!(two.events.len(), 1, "stops before the ms-400 group");
        assert_eq!(two.next_since, 400);
        let one = read_page(&p, 2, 400, 1, None).unwrap();
        assert!(one.split_millisecond);
        assert_eq!(one.next_since, 401);

        let scans = read_page(&p, 2, 0, 100, Some(AlertKind::PortScan)).unwrap();
        assert!(
            scans
                .events
                .iter()
                .all(|e| e.alert.kind == AlertKind::PortScan)
        );
        assert_eq!(scans.events.len(), 4);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_files_are_an_empty_history() {
        let d = dir("missing");
        let page = read_page(&d.join("none.jsonl"), 3, 5, 10, None).unwrap();
        assert!(page.events.is_empty());
        assert_eq!((page.more, page.next_since, page.files_read), (false, 5, 0));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Events at the last millisecond there is: paging by `next_since`
    /// ends there, it does not start over at 0.
    #[test]
    fn paging_ends_at_the_last_millisecond_instead_of_wrapping() {
        let mut pager = Pager::new(0, 2, None);
        let text: String = (1..=3).map(|id| ev(id, true, u64::MAX, 0)).collect();
        pager.read(io::Cursor::new(text.clone())).unwrap();
        let page = pager.page();
        assert_eq!(page.events.len(), 2);
        assert!(page.split_millisecond);
        assert!(!page.more, "nothing can follow u64::MAX");
        assert_eq!(page.next_since, u64::MAX);
        // A client that follows next_since while `more` never goes back.
        let mut since = 0;
        for _ in 0..5 {
            let mut p = Pager::new(since, 1, None);
            p.read(io::Cursor::new(text.clone())).unwrap();
            let page = p.page();
            assert!(page.next_since >= since, "went back to {}", page.next_since);
            since = page.next_since;
            if !page.more {
                break;
            }
        }
        assert_eq!(since, u64::MAX);
    }

    /// A line of many MiB between two events: skipped without being held,
    /// the events on either side read.
    #[test]
    fn an_overlong_line_is_skipped_and_the_events_around_it_read() {
        let mut text = ev(1, true, 100, 0);
        text.push_str(&"x".repeat(3 * MAX_LINE));
        text.push('\n');
        text.push_str(&ev(1, false, 100, 200));
        text.push('\n');
        let mut pager = Pager::new(0, 100, None);
        pager.read(io::Cursor::new(text)).unwrap();
        let page = pager.page();
        assert_eq!(page.events.len(), 2);
        assert_eq!(
            page.skipped_lines, 1,
            "the long line; an empty line is not counted"
        );
    }
}
