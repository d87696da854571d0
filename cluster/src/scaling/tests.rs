use std::net::SocketAddr;

use super::*;
use crate::config::MemberConfig;
use crate::protocol::peer::{decode_frame, encode_frame, Frame, FrameKind, ScanRow};

fn member(id: &str, port: u16) -> MemberConfig {
    MemberConfig {
        id: id.into(),
        datacenter: "dc1".into(),
        weight: 2,
        client_address: SocketAddr::from(([127, 0, 0, 3], port)),
        peer_address: SocketAddr::from(([127, 0, 0, 3], port + 1)),
    }
}

fn scaling_messages() -> Vec<PeerMessage> {
    vec![
        PeerMessage::RingUpdate {
            spec: RingSpec {
                version: 7,
                phase: Phase::ReadNew,
                current: vec![member("a", 10), member("b", 20)],
                next: vec![member("a", 10)],
            },
        },
        PeerMessage::RingAck { version: 9 },
        PeerMessage::StreamPull {
            version: 3,
            cursor: b"key\0".to_vec(),
            scan_limit: 512,
        },
        PeerMessage::StreamBatch {
            rows: vec![ScanRow {
                key: b"k".to_vec(),
                siblings: vec![1, 2, 3],
            }],
            next_cursor: Some(b"l".to_vec()),
        },
        PeerMessage::StreamBatch {
            rows: Vec::new(),
            next_cursor: None,
        },
        PeerMessage::Rebalance { version: 4 },
        PeerMessage::RebalanceReply {
            rows: 10,
            keys_new: 5,
            bytes: 1000,
            failures: "n3: timeout".into(),
        },
    ]
}

#[test]
fn ring_change_messages_round_trip() {
    for message in scaling_messages() {
        let frame = Frame {
            kind: FrameKind::Request,
            request_id: 1,
            message: message.clone(),
        };
        let bytes = encode_frame(&frame, 1 << 20).unwrap();
        let (decoded, used) = decode_frame(&bytes, 1 << 20).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(decoded.message, message, "{}", message.name());
    }
}

#[test]
fn ring_update_tag_and_corrupt_fields_are_checked() {
    let frame = Frame {
        kind: FrameKind::OneWay,
        request_id: 0,
        message: PeerMessage::RingAck { version: 1 },
    };
    let bytes = encode_frame(&frame, 1 << 20).unwrap();
    assert_eq!(bytes[20], 91, "RingAck is tag 91");
    assert_eq!(&bytes[21..29], &1u64.to_be_bytes());

    let spec = RingSpec {
        version: 1,
        phase: Phase::Stable,
        current: vec![member("a", 10)],
        next: Vec::new(),
    };
    let frame = Frame {
        message: PeerMessage::RingUpdate { spec },
        ..frame
    };
    let mut bytes = encode_frame(&frame, 1 << 20).unwrap();
    // The phase byte follows the tag and the version.
    bytes[29] = 7;
    let checksum = crc32c::crc32c(&bytes[20..]);
    bytes[16..20].copy_from_slice(&checksum.to_be_bytes());
    let error = decode_frame(&bytes, 1 << 20).unwrap_err().to_string();
    assert!(error.contains("RingUpdate.phase 7"), "{error}");
}
