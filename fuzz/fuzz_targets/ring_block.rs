//! The ring block walker on arbitrary block images: a frame offset or length
//! the kernel never writes must stop the walk, never read outside the block.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (frames, bytes) = tpacket::fuzzing::walk_block(input);
    assert!(bytes <= input.len() * frames.max(1));
});
