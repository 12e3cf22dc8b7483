//! The config parser on arbitrary text: an error or a valid config, never a
//! panic; an accepted config keeps its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trafficalerted::config::Config;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
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
