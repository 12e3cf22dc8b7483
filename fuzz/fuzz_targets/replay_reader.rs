//! Capture files are outside input: any bytes as a pcap or pcapng stream,
//! every packet through the parser as replay does. An error (with its
//! offset) or packets, never a panic; the reader's buffer never grows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trafficalerted::replay::reader::{MAX_RECORD, Reader};
use trafficalerted::wire::{self, Meta};

fuzz_target!(|input: &[u8]| {
    let Ok(mut r) = Reader::new(input) else {
        return;
    };
    loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= MAX_RECORD);
                assert!(p.wire_len as usize >= p.data.len());
                let _ = wire::parse(
                    p.link,
                    p.data,
                    Meta {
                        wire_len: p.wire_len,
                        ..Meta::default()
                    },
                );
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    assert!(r.offset() <= input.len() as u64);
});
