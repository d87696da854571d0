//! Feeds arbitrary bytes to the peer frame decoder, whole and split in two: nothing may panic,
//! a decoded frame must consume bytes inside the input, the same bytes must decode the same
//! however they are split, and a decoded frame must re-encode to exactly the bytes consumed
//! (the format has one encoding per frame).

#![no_main]

use cluster::protocol::peer::{decode_frame, encode_frame, Frame};
use libfuzzer_sys::fuzz_target;

/// A small limit reaches the size check with short inputs.
const LIMIT: usize = 1024;

fn decode_all(pieces: &[&[u8]]) -> (Vec<Frame>, bool) {
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            match decode_frame(&buffer, LIMIT) {
                Ok(Some((frame, consumed))) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    let reencoded = encode_frame(&frame, LIMIT).expect("decoded frame re-encodes");
                    assert_eq!(reencoded, buffer[..consumed]);
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
    let (whole, whole_failed) = decode_all(&[bytes]);
    let split_at = bytes.first().map_or(0, |&byte| usize::from(byte) % (bytes.len() + 1));
    let (first, second) = bytes.split_at(split_at);
    let (split, split_failed) = decode_all(&[first, second]);
    if !whole_failed && !split_failed {
        assert_eq!(whole, split);
    }
});
