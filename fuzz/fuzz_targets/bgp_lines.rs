//! Lines crossing the mitigation link: from the bridge to the daemon
//! (`neighbor`, `done`, `failed`), from ExaBGP to the bridge (JSON session
//! states, acknowledgements) and from the daemon to the bridge (the wanted
//! set). Anything is an answer or nothing, never a panic; a set compared
//! with itself sends nothing, and what is sent is only ever an ExaBGP
//! `announce`/`withdraw` command on one line.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use trafficalerted::mitigation::{bridge, link};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut set = BTreeMap::new();
    for line in text.split('\n') {
        let _ = link::parse_line(line);
        let _ = bridge::session_state(line);
        if let Some(r) = bridge::route_line(line) {
            set.insert(r.key.clone(), r);
        }
    }
    assert!(bridge::diff(&set, &set).is_empty());
    for cmd in bridge::diff(&BTreeMap::new(), &set)
        .into_iter()
        .chain(bridge::diff(&set, &BTreeMap::new()))
    {
        assert!(cmd.starts_with("announce ") || cmd.starts_with("withdraw "));
        assert!(!cmd.bytes().any(|b| b.is_ascii_control()), "{cmd:?}");
    }
});
