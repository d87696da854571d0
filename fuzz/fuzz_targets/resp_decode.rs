//! Feeds arbitrary bytes to the RESP request decoder (whole and split in two), the command
//! parser and the reply decoder: nothing may panic, every decoded request must consume bytes
//! inside the input, and the same bytes must decode the same however they are split.

#![no_main]

use cluster::protocol::{decode_reply, Decoder, Limits, Request};
use libfuzzer_sys::fuzz_target;

/// Decodes every request in `pieces` fed one after another, stopping at the first error.
fn decode_all(pieces: &[&[u8]], limits: &Limits) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut decoder = Decoder::new(limits.clone());
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            match decoder.decode(&buffer) {
                Ok(Some((frame, consumed))) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    assert!(!frame.is_empty());
                    buffer.drain(..consumed);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|bytes: &[u8]| {
    // Small limits reach every limit check with short inputs.
    let limits = Limits {
        bulk_length_bytes_max: 256,
        array_length_max: 16,
        inline_length_bytes_max: 128,
        frame_size_bytes_max: 1024,
        reply_depth_max: 4,
        ..Limits::default()
    };
    let (whole, whole_failed) = decode_all(&[bytes], &limits);
    let split_at = bytes.first().map_or(0, |&byte| usize::from(byte) % (bytes.len() + 1));
    let (first, second) = bytes.split_at(split_at);
    let (split, split_failed) = decode_all(&[first, second], &limits);
    if !whole_failed && !split_failed {
        assert_eq!(whole, split);
    }
    for frame in whole {
        let _ = Request::parse(frame, &limits);
    }
    if let Ok(Some((_, consumed))) = decode_reply(bytes, &limits) {
        assert!(consumed > 0 && consumed <= bytes.len());
    }
});
