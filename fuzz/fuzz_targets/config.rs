//! Everything read from files at start: the config parser (TOML, and the
//! original `Key: value` format), and the alert history. An error or a
//! result, never a panic; an accepted config keeps its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trafficalerted::config::Config;

fuzz_target!(|input: &[u8]| {
    // The alert history is read back at start: any bytes are a history
    // file, good or torn.
    let loaded = trafficalerted::sinks::history::read(input).expect("reading from memory");
    assert!(loaded.open.len() <= loaded.events);
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // An original TrafficAlerted.conf converts to valid TOML or an error.
    if let Ok(c) = trafficalerted::config::legacy::convert(text) {
        if let Err(e) = Config::parse(&c.toml, "converted") {
            // Values the old format allowed but ours bounds (an interval of
            // 0, a threshold of 0) are refused with a message, never a panic.
            let _ = e.to_string();
        }
    }
    match Config::parse(text, "fuzz.toml") {
        Ok(c) => {
            assert!(c.interval_ticks() >= 1);
            assert!(c.capture.snaplen >= 64);
            assert!(!c.http.listen.is_empty());
            let _ = serde_json::to_string(&c);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
