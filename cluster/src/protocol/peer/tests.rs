use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const LIMIT: usize = 1024;

fn every_message() -> Vec<PeerMessage> {
    vec![
        PeerMessage::Hello {
            node: "node-a".to_string(),
            datacenter: "dc1".to_string(),
            cluster_name: "test".to_string(),
        },
        PeerMessage::Ping,
        PeerMessage::Pong,
        PeerMessage::Put {
            key: b"key".to_vec(),
            siblings: vec![0, 1, 2, 255],
        },
        PeerMessage::PutAck,
        PeerMessage::Get { key: Vec::new() },
        PeerMessage::GetReply { siblings: None },
        PeerMessage::GetDigest {
            keys: vec![b"k".to_vec(), Vec::new()],
        },
        PeerMessage::GetDigest { keys: Vec::new() },
        PeerMessage::PutMany {
            puts: vec![(b"k".to_vec(), vec![1, 2]), (Vec::new(), Vec::new())],
        },
        PeerMessage::PutManyAck { failed: Vec::new() },
        PeerMessage::PutManyAck {
            failed: vec![(3, "disk full".to_string())],
        },
        PeerMessage::DigestReply {
            digests: vec![None, Some(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10)],
        },
        PeerMessage::GetReply {
            siblings: Some(vec![9; 40]),
        },
        PeerMessage::Scan {
            start: b"a".to_vec(),
            end: Some(b"m".to_vec()),
            limit: 100,
        },
        PeerMessage::Scan {
            start: Vec::new(),
            end: None,
            limit: 0,
        },
        PeerMessage::ScanReply {
            rows: vec![
                ScanRow {
                    key: b"a".to_vec(),
                    siblings: vec![1],
                },
                ScanRow {
                    key: b"b".to_vec(),
                    siblings: Vec::new(),
                },
            ],
        },
        PeerMessage::Error {
            message: "disk full ✗".to_string(),
        },
        PeerMessage::Mint {
            key: b"k".to_vec(),
            context: vec![3, 4],
            value: None,
        },
        PeerMessage::Mint {
            key: Vec::new(),
            context: Vec::new(),
            value: Some(b"v".to_vec()),
        },
    ]
}

fn frame(kind: FrameKind, request_id: u64, message: PeerMessage) -> Frame {
    Frame {
        kind,
        request_id,
        message,
    }
}

#[test]
fn golden_bytes_of_a_put_request() {
    let put = PeerMessage::Put {
        key: b"k".to_vec(),
        siblings: vec![1, 2],
    };
    let bytes = encode_frame(&frame(FrameKind::Request, 7, put.clone()), LIMIT).unwrap();
    let payload = [4, 0, 0, 0, 1, b'k', 0, 0, 0, 2, 1, 2];
    let mut expected = vec![
        0x4B, 0x50, // magic
        1,    // format version
        1,    // request
        0, 0, 0, 0, 0, 0, 0, 7, // request id
        0, 0, 0, 12, // payload length
    ];
    expected.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    expected.extend_from_slice(&payload);
    assert_eq!(bytes, expected);
    // The checksum itself is pinned too, so a change of polynomial cannot slip through.
    assert_eq!(&bytes[16..20], &GOLDEN_PUT_CHECKSUM);
    let (decoded, consumed) = decode_frame(&bytes, LIMIT).unwrap().unwrap();
    assert_eq!(consumed, bytes.len());
    assert_eq!(decoded, frame(FrameKind::Request, 7, put));
}

const GOLDEN_PUT_CHECKSUM: [u8; 4] = [0xAB, 0xA9, 0x2E, 0xFB];

#[test]
fn golden_bytes_of_a_one_way_hello_and_a_pong_response() {
    let hello = PeerMessage::Hello {
        node: "a".to_string(),
        datacenter: "d".to_string(),
        cluster_name: "c".to_string(),
    };
    let bytes = encode_frame(&frame(FrameKind::OneWay, 0, hello), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[1, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'd', 0, 0, 0, 1, b'c']
    );
    assert_eq!(bytes[3], 3);
    let bytes = encode_frame(&frame(FrameKind::Response, 258, PeerMessage::Pong), LIMIT).unwrap();
    assert_eq!(&bytes[3..16], &[2, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1]);
    assert_eq!(&bytes[HEADER_SIZE_BYTES..], &[3]);
}

#[test]
fn every_message_round_trips() {
    for (index, message) in every_message().into_iter().enumerate() {
        let original = frame(FrameKind::Response, index as u64, message);
        let bytes = encode_frame(&original, LIMIT).unwrap();
        let (decoded, consumed) = decode_frame(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!((decoded, consumed), (original, bytes.len()));
    }
}

#[test]
fn decode_split_at_every_byte_needs_more_then_succeeds() {
    let mut stream = Vec::new();
    let frames: Vec<Frame> = every_message()
        .into_iter()
        .enumerate()
        .map(|(index, message)| frame(FrameKind::Request, index as u64 + 1, message))
        .collect();
    for original in &frames {
        stream.extend(encode_frame(original, LIMIT).unwrap());
    }
    let first_length = encode_frame(&frames[0], LIMIT).unwrap().len();
    for split in 0..first_length {
        assert_eq!(decode_frame(&stream[..split], LIMIT).unwrap(), None);
    }
    // Feeding the whole stream one byte at a time yields every frame, in order.
    let mut buffer = Vec::new();
    let mut decoded = Vec::new();
    for &byte in &stream {
        buffer.push(byte);
        if let Some((frame, consumed)) = decode_frame(&buffer, LIMIT).unwrap() {
            buffer.drain(..consumed);
            decoded.push(frame);
        }
    }
    assert!(buffer.is_empty());
    assert_eq!(decoded, frames);
}

fn valid_ping() -> Vec<u8> {
    encode_frame(&frame(FrameKind::Request, 1, PeerMessage::Ping), LIMIT).unwrap()
}

fn error_text(bytes: &[u8]) -> String {
    decode_frame(bytes, LIMIT).unwrap_err().to_string()
}

#[test]
fn bad_magic_is_rejected_from_the_first_two_bytes() {
    assert!(error_text(b"GET / HTTP/1.1\r\n").contains("magic"));
    assert!(error_text(b"*1").contains("magic"));
}

#[test]
fn bad_version_and_kind_are_rejected() {
    let mut bytes = valid_ping();
    bytes[2] = 2;
    assert!(error_text(&bytes[..3]).contains("version 2"));
    let mut bytes = valid_ping();
    bytes[3] = 9;
    assert!(error_text(&bytes[..4]).contains("frame kind 9"));
}

#[test]
fn bad_checksum_is_rejected() {
    let mut bytes = valid_ping();
    bytes[16] ^= 1;
    assert!(error_text(&bytes).contains("checksum"));
    let mut bytes = valid_ping();
    *bytes.last_mut().unwrap() = 3;
    assert!(error_text(&bytes).contains("checksum"));
}

#[test]
fn oversize_frames_are_rejected_before_the_payload_arrives() {
    let mut header = valid_ping()[..HEADER_SIZE_BYTES].to_vec();
    header[12..16].copy_from_slice(&(LIMIT as u32 + 1).to_be_bytes());
    let error = decode_frame(&header, LIMIT).unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { size, .. } if size == LIMIT + 1));
    let big = PeerMessage::Put {
        key: Vec::new(),
        siblings: vec![0; LIMIT],
    };
    let error = encode_frame(&frame(FrameKind::Request, 1, big), LIMIT).unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { .. }));
}

/// Wraps `payload` in a correct header, so payload parsing itself is exercised.
fn with_header(payload: &[u8]) -> Vec<u8> {
    let mut bytes = valid_ping()[..HEADER_SIZE_BYTES].to_vec();
    bytes[12..16].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes[16..20].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn bad_payloads_are_rejected() {
    for (payload, expected) in [
        (&[][..], "message tag"),
        (&[199][..], "unknown message tag 199"),
        (&[2, 0][..], "trailing"),
        (&[6, 0, 0, 0, 5, 1][..], "Get.key"),
        (&[7, 2][..], "presence byte 2"),
        (&[9, 255, 255, 255, 255][..], "claims"),
        (&[10, 0, 0, 0, 1, 0xff][..], "UTF-8"),
    ] {
        let text = error_text(&with_header(payload));
        assert!(text.contains(expected), "{payload:?}: {text}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let valid: Vec<Vec<u8>> = every_message()
        .into_iter()
        .map(|message| encode_frame(&frame(FrameKind::Request, 3, message), LIMIT).unwrap())
        .collect();
    for round in 0..5000 {
        let length = rng.gen_range(0..64);
        let mut bytes: Vec<u8> = (0..length).map(|_| rng.gen()).collect();
        // Half the inputs get a valid header over a random payload, or a mutated valid
        // frame, so the payload parser sees more than magic errors.
        match round % 3 {
            0 => bytes = with_header(&bytes),
            1 => {
                bytes = valid[round % valid.len()].clone();
                let index = rng.gen_range(0..bytes.len());
                bytes[index] = rng.gen();
            }
            _ => {}
        }
        if let Ok(Some((_, consumed))) = decode_frame(&bytes, LIMIT) {
            assert!(consumed <= bytes.len());
        }
    }
}

#[test]
fn link_update_messages_round_trip_with_golden_bytes_and_bypass_the_emulator() {
    let update = PeerMessage::LinkUpdate {
        words: vec!["HEAL".to_string(), "d1".to_string()],
    };
    let bytes = encode_frame(&frame(FrameKind::Request, 1, update.clone()), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[40, 0, 0, 0, 2, 0, 0, 0, 4, b'H', b'E', b'A', b'L', 0, 0, 0, 2, b'd', b'1']
    );
    let reply = PeerMessage::LinkUpdateReply {
        summary: "healed ✓".to_string(),
    };
    for message in [update, reply, PeerMessage::LinkUpdate { words: Vec::new() }] {
        assert!(message.bypasses_link_emulator());
        let original = frame(FrameKind::Response, 9, message);
        let bytes = encode_frame(&original, LIMIT).unwrap();
        let (decoded, consumed) = decode_frame(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!((decoded, consumed), (original, bytes.len()));
    }
    assert!(!PeerMessage::Ping.bypasses_link_emulator());
}

#[test]
fn link_update_with_a_forged_word_count_is_refused() {
    let mut payload = vec![40];
    payload.extend_from_slice(&100_000u32.to_be_bytes());
    let mut bytes = vec![0x4B, 0x50, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    bytes.extend_from_slice(&payload);
    let error = decode_frame(&bytes, LIMIT).unwrap_err().to_string();
    assert!(error.contains("LinkUpdate claims 100000 words"), "{error}");
}

/// The decoding error of a response frame around `payload` (header and checksum right).
fn payload_error(payload: &[u8]) -> String {
    let mut bytes = encode_frame(&frame(FrameKind::Response, 1, PeerMessage::Pong), LIMIT).unwrap()
        [..HEADER_SIZE_BYTES]
        .to_vec();
    bytes[12..16].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes[16..20].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    decode_frame(&bytes, LIMIT).unwrap_err().to_string()
}

#[test]
fn digest_messages_have_golden_bytes_and_bad_counts_are_refused() {
    let request = PeerMessage::GetDigest {
        keys: vec![b"k".to_vec(), b"ab".to_vec()],
    };
    let bytes = encode_frame(&frame(FrameKind::Request, 1, request), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[12, 0, 0, 0, 2, 0, 0, 0, 1, b'k', 0, 0, 0, 2, b'a', b'b']
    );
    let reply = PeerMessage::DigestReply {
        digests: vec![Some(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10), None],
    };
    let bytes = encode_frame(&frame(FrameKind::Response, 1, reply), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[13, 0, 0, 0, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0]
    );
    for (payload, expected) in [
        (vec![13, 0, 0, 0, 1, 2], "presence byte 2"),
        (
            vec![13, 0, 0, 0, 1, 1, 0, 0],
            "DigestReply.digests needs 8 bytes",
        ),
        (
            vec![13, 0xff, 0xff, 0xff, 0xff, 0],
            "claims 4294967295 digests",
        ),
        (vec![12, 0, 0, 1, 0, 0, 0, 0, 0], "claims 256 keys"),
    ] {
        let error = payload_error(&payload);
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn put_many_messages_have_golden_bytes_and_bad_counts_are_refused() {
    let request = PeerMessage::PutMany {
        puts: vec![(b"k".to_vec(), vec![7])],
    };
    let bytes = encode_frame(&frame(FrameKind::Request, 1, request), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[14, 0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 1, 7]
    );
    let reply = PeerMessage::PutManyAck {
        failed: vec![(2, "no".to_string())],
    };
    let bytes = encode_frame(&frame(FrameKind::Response, 1, reply), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[15, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, b'n', b'o']
    );
    for (payload, expected) in [
        (
            vec![14, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
            "claims 2 puts",
        ),
        (vec![15, 0, 0, 1, 0], "claims 256 failures"),
        (
            vec![14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5],
            "PutMany.siblings needs 5 bytes",
        ),
    ] {
        let error = payload_error(&payload);
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn auth_messages_round_trip_with_golden_bytes() {
    let challenge = PeerMessage::AuthChallenge { nonce: vec![7, 8] };
    let bytes = encode_frame(&frame(FrameKind::OneWay, 0, challenge.clone()), LIMIT).unwrap();
    assert_eq!(&bytes[HEADER_SIZE_BYTES..], &[60, 0, 0, 0, 2, 7, 8]);
    let proof = PeerMessage::AuthProof { proof: vec![9] };
    let bytes = encode_frame(&frame(FrameKind::OneWay, 0, proof.clone()), LIMIT).unwrap();
    assert_eq!(&bytes[HEADER_SIZE_BYTES..], &[61, 0, 0, 0, 1, 9]);
    for message in [challenge, proof] {
        let original = frame(FrameKind::OneWay, 0, message);
        let bytes = encode_frame(&original, LIMIT).unwrap();
        let (decoded, consumed) = decode_frame(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!((decoded, consumed), (original, bytes.len()));
    }
}

#[test]
fn gossip_round_trips_with_golden_bytes_and_goes_through_the_emulator() {
    use crate::membership::{Gossip, GossipEntry, Status};
    use crate::ring::NodeId;
    let gossip = PeerMessage::Gossip {
        table: Gossip {
            from: NodeId::new("a"),
            entries: vec![GossipEntry {
                id: NodeId::new("b"),
                generation: 2,
                heartbeat: 258,
                status: Status::Down,
            }],
        },
    };
    let bytes = encode_frame(&frame(FrameKind::OneWay, 0, gossip.clone()), LIMIT).unwrap();
    assert_eq!(
        &bytes[HEADER_SIZE_BYTES..],
        &[
            70, 0, 0, 0, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 1, b'b', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,
            0, 0, 1, 2, 2
        ]
    );
    assert!(!gossip.bypasses_link_emulator());
    for status in [Status::Alive, Status::Suspect, Status::Down, Status::Left] {
        let message = PeerMessage::Gossip {
            table: Gossip {
                from: NodeId::new("n1"),
                entries: vec![
                    GossipEntry {
                        id: NodeId::new("n1"),
                        generation: u64::MAX,
                        heartbeat: 0,
                        status: Status::Alive,
                    },
                    GossipEntry {
                        id: NodeId::new("n2"),
                        generation: 7,
                        heartbeat: 9,
                        status,
                    },
                ],
            },
        };
        let original = frame(FrameKind::OneWay, 0, message);
        let bytes = encode_frame(&original, LIMIT).unwrap();
        let (decoded, consumed) = decode_frame(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!((decoded, consumed), (original, bytes.len()));
    }
}

#[test]
fn gossip_with_a_forged_count_or_status_is_refused() {
    let decode_payload = |payload: &[u8]| {
        let mut bytes = vec![0x4B, 0x50, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        bytes.extend_from_slice(payload);
        decode_frame(&bytes, LIMIT).unwrap_err().to_string()
    };
    let mut payload = vec![70, 0, 0, 0, 0];
    payload.extend_from_slice(&100_000u32.to_be_bytes());
    let error = decode_payload(&payload);
    assert!(error.contains("Gossip claims 100000 entries"), "{error}");
    let mut payload = vec![70, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    payload.extend_from_slice(&[0; 16]);
    payload.push(9);
    let error = decode_payload(&payload);
    assert!(error.contains("Gossip.status 9 is unknown"), "{error}");
}

#[test]
fn anti_entropy_messages_travel_in_frames_with_their_own_tags() {
    use crate::antientropy::wire::AeMessage;
    use crate::ring::TokenRange;
    let message = PeerMessage::AntiEntropy(AeMessage::Roots {
        depth: 2,
        ring_version: 0,
        ranges: vec![TokenRange {
            start_exclusive: 1,
            end_inclusive: 2,
        }],
    });
    assert_eq!(message.name(), "AeRoots");
    assert!(!message.bypasses_link_emulator());
    let bytes = encode_frame(&frame(FrameKind::Request, 9, message.clone()), 1 << 20).unwrap();
    assert_eq!(bytes[HEADER_SIZE_BYTES], 80);
    let (decoded, used) = decode_frame(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded.message, message);
    let reply = PeerMessage::AntiEntropy(AeMessage::PushReply {
        applied: 1,
        changed: 0,
    });
    let bytes = encode_frame(&frame(FrameKind::Response, 9, reply.clone()), 1 << 20).unwrap();
    assert_eq!(bytes[HEADER_SIZE_BYTES], 89);
    assert_eq!(
        decode_frame(&bytes, 1 << 20).unwrap().unwrap().0.message,
        reply
    );
}

#[test]
fn one_encoding_serves_several_request_ids() {
    let message = PeerMessage::Put {
        key: b"k".to_vec(),
        siblings: vec![7; 100],
    };
    let mut bytes = encode_message_frame(FrameKind::Request, 0, &message, 1 << 20).unwrap();
    set_frame_request_id(&mut bytes, 42);
    let (frame, used) = decode_frame(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(frame.request_id, 42);
    assert_eq!(frame.kind, FrameKind::Request);
    assert_eq!(frame.message, message);
    // Too short to hold a header: left alone, no panic.
    let mut short = vec![1, 2, 3];
    set_frame_request_id(&mut short, 9);
    assert_eq!(short, [1, 2, 3]);
}

#[test]
fn data_path_frames_are_sized_exactly_up_front() {
    for message in every_message() {
        let mut payload = Vec::new();
        payload::encode(&message, &mut payload);
        let hint = payload::size_hint(&message);
        let exact = matches!(
            message,
            PeerMessage::Ping
                | PeerMessage::Pong
                | PeerMessage::PutAck
                | PeerMessage::Put { .. }
                | PeerMessage::Get { .. }
                | PeerMessage::GetReply { .. }
                | PeerMessage::GetDigest { .. }
                | PeerMessage::DigestReply { .. }
                | PeerMessage::PutMany { .. }
                | PeerMessage::PutManyAck { .. }
                | PeerMessage::Mint { .. }
                | PeerMessage::HintedPut { .. }
                | PeerMessage::ScanReply { .. }
                | PeerMessage::Error { .. }
        );
        if exact {
            assert_eq!(hint, payload.len(), "{}", message.name());
            let bytes = encode_message_frame(FrameKind::Request, 1, &message, usize::MAX).unwrap();
            assert_eq!(bytes.capacity(), bytes.len(), "{}", message.name());
        }
    }
}
