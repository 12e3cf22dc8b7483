//! The alert history file is read back at start and for every history
//! page; a disk, an editor or another program may have put anything in it.
//! Any bytes: events, skipped lines or an error, never a panic; paging never
//! goes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trafficalerted::sinks::history;
use trafficalerted::sinks::lines::MAX_LINE;

fuzz_target!(|input: &[u8]| {
    // The daemon's bound on a line is 1 MiB, more than libFuzzer makes an
    // input: a byte 9 from 0x80 up picks a bound of 64 B to 2 MiB instead,
    // so that lines too long to read are reached. An input that starts
    // as an event (ASCII) keeps the daemon's.
    let max_line = match input.get(9) {
        Some(&b) if b >= 0x80 => 64 << (b & 15),
        _ => MAX_LINE,
    };
    if let Ok(l) = history::read_bounded(input, max_line) {
        assert!(l.open.len() <= l.events);
    }
    let since = input
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let limit = input.get(8).map_or(10, |&b| usize::from(b));
    if let Ok((n, more, next)) = trafficalerted::http::history_page(input, since, limit, max_line) {
        assert!(n <= limit.max(1));
        if more {
            assert!(next >= since, "paging went back from {since} to {next}");
        }
    }
});
