//! The alert history file is read back at start and for every history
//! page; a disk, an editor or another program may have put anything in it.
//! Any bytes: events, skipped lines or an error, never a panic; paging never
//! goes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trafficalerted::sinks::history;

fuzz_target!(|input: &[u8]| {
    if let Ok(l) = history::read(input) {
        assert!(l.open.len() <= l.events);
    }
    let since = input
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let limit = input.get(8).map_or(10, |&b| usize::from(b));
    if let Ok((n, more, next)) = trafficalerted::http::history_page(input, since, limit) {
        assert!(n <= limit.max(1));
        if more {
            assert!(next >= since, "paging went back from {since} to {next}");
        }
    }
});
