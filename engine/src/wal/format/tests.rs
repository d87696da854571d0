use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Segment 1 holding `records`, as this build writes it (unsealed).
fn segment_with(records: &[(u64, &[u8])]) -> Vec<u8> {
    numbered_segment_with(1, records)
}

fn numbered_segment_with(number: u64, records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut bytes = segment_header(number).to_vec();
    for (seq, payload) in records {
        bytes.extend_from_slice(&record_header(number, *seq, payload));
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// A version 1 segment holding `records`, as builds before recycling wrote it.
fn legacy_segment_with(records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut bytes = legacy_segment_header().to_vec();
    for (seq, payload) in records {
        bytes.extend_from_slice(&legacy_record_header(*seq, payload));
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// `(tail_only, stale)` of a damaged end; `None` for a clean or sealed one.
fn damage(end: &SegmentEnd) -> Option<(bool, bool)> {
    match end {
        SegmentEnd::Damaged {
            tail_only, stale, ..
        } => Some((*tail_only, *stale)),
        SegmentEnd::Clean | SegmentEnd::Sealed => None,
    }
}

fn path() -> &'static Path {
    Path::new("000001.log")
}

/// Golden bytes computed independently (crc32c in a few lines of Python): a change here is a
/// format change and needs a new `FORMAT_VERSION`.
#[test]
fn golden_bytes_of_header_one_record_and_end_marker() {
    let golden: [u8; 67] = [
        0x4c, 0x53, 0x4d, 0x57, 0x41, 0x4c, 0x00, 0x01, // magic "LSMWAL\0\x01"
        0x02, 0x00, 0x00, 0x00, // version 2
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // segment 5
        0x7b, 0x77, 0xce, 0x74, // crc32c of magic, version and segment
        0x03, 0x00, 0x00, 0x00, // payload length 3
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 7
        0x23, 0x06, 0x42, 0xff, // crc32c of segment, length and seq
        0xb7, 0x3f, 0x4b, 0x36, // crc32c of the payload
        0x61, 0x62, 0x63, // "abc"
        0xff, 0xff, 0xff, 0xff, // end marker: length 0xffffffff
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 0
        0xd5, 0x35, 0x16, 0x82, // crc32c of segment, length and seq
        0x00, 0x00, 0x00, 0x00, // no payload checksum
    ];
    let mut written = numbered_segment_with(5, &[(7, b"abc")]);
    written.extend_from_slice(&end_marker(5));
    assert_eq!(written, golden);
    let decoded = decode_segment(path(), &golden).unwrap();
    assert!(matches!(decoded.end, SegmentEnd::Sealed));
    assert_golden_record(&decoded, 24, 67);
}

/// The golden segments' one record, "abc" with seq 7 at `offset`, and their valid length.
fn assert_golden_record(decoded: &DecodedSegment<'_>, offset: u64, valid_length: u64) {
    assert_eq!(decoded.valid_length, valid_length);
    assert_eq!(
        decoded.records,
        vec![DecodedRecord {
            offset,
            seq: 7,
            payload: b"abc"
        }]
    );
}

/// Version 1, as written before segments were recycled: still read.
#[test]
fn golden_bytes_of_a_version_1_header_and_one_record() {
    let golden: [u8; 35] = [
        0x4c, 0x53, 0x4d, 0x57, 0x41, 0x4c, 0x00, 0x01, // magic "LSMWAL\0\x01"
        0x01, 0x00, 0x00, 0x00, // version 1
        0x03, 0x00, 0x00, 0x00, // payload length 3
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 7
        0x09, 0xcc, 0xab, 0x82, // crc32c of length and seq
        0xb7, 0x3f, 0x4b, 0x36, // crc32c of the payload
        0x61, 0x62, 0x63, // "abc"
    ];
    assert_eq!(legacy_segment_with(&[(7, b"abc")]), golden);
    let decoded = decode_segment(path(), &golden).unwrap();
    assert!(matches!(decoded.end, SegmentEnd::Clean));
    assert_golden_record(&decoded, 12, 35);
}

#[test]
fn decodes_records_in_order_including_empty_payloads() {
    let bytes = segment_with(&[(1, b"one"), (2, b""), (3, b"three")]);
    let decoded = decode_segment(path(), &bytes).unwrap();
    let seqs: Vec<u64> = decoded.records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(decoded.records[2].payload, b"three");
    assert_eq!(decoded.valid_length, bytes.len() as u64);
}

#[test]
fn every_truncation_is_a_torn_tail_at_the_last_whole_record() {
    let bytes = segment_with(&[(1, b"first record"), (2, b"second record")]);
    let second_start = (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 12) as u64;
    for length in 0..bytes.len() {
        let decoded = decode_segment(path(), &bytes[..length]).unwrap();
        match decoded.end {
            SegmentEnd::Clean => {
                assert!(length == SEGMENT_HEADER_BYTES || length as u64 == second_start)
            }
            SegmentEnd::Sealed => panic!("cut at {length}: no end marker was written"),
            SegmentEnd::Damaged {
                offset, tail_only, ..
            } => {
                assert!(tail_only, "cut at {length}");
                let expected = match length {
                    _ if length < SEGMENT_HEADER_BYTES => 0,
                    _ if (length as u64) < second_start => SEGMENT_HEADER_BYTES as u64,
                    _ => second_start,
                };
                assert_eq!(offset, expected, "cut at {length}");
                assert_eq!(decoded.valid_length, expected);
            }
        }
    }
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let mut bytes = segment_with(&[(1, b"kept")]);
    let valid = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; 4096]);
    let decoded = decode_segment(path(), &bytes).unwrap();
    assert_eq!(decoded.records.len(), 1);
    assert_eq!(decoded.valid_length, valid);
    assert!(matches!(
        decoded.end,
        SegmentEnd::Damaged {
            tail_only: true,
            ..
        }
    ));
}

#[test]
fn flipped_byte_with_data_after_is_damage_not_a_tail() {
    let bytes = segment_with(&[(1, b"first"), (2, b"second"), (3, b"third")]);
    let second_start = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 5;
    // One flip in each part of the second record: length, seq, checksums, payload.
    for position in second_start..second_start + RECORD_HEADER_BYTES + 6 {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x40;
        let decoded = decode_segment(path(), &damaged).unwrap();
        assert_eq!(decoded.records.len(), 1, "flip at {position}");
        match decoded.end {
            SegmentEnd::Damaged {
                offset,
                tail_only,
                error,
                ..
            } => {
                assert_eq!(offset, second_start as u64, "flip at {position}");
                assert!(!tail_only, "flip at {position}");
                assert!(
                    matches!(error, Error::ChecksumMismatch { offset, .. } if offset == second_start as u64),
                    "{error}"
                );
                assert!(error.to_string().contains("000001.log"), "{error}");
            }
            SegmentEnd::Clean | SegmentEnd::Sealed => {
                panic!("flip at {position} went unnoticed")
            }
        }
    }
}

#[test]
fn bad_magic_and_unknown_version() {
    let mut bytes = segment_with(&[(1, b"x")]);
    bytes[0] ^= 1;
    let decoded = decode_segment(path(), &bytes).unwrap();
    assert!(matches!(
        decoded.end,
        SegmentEnd::Damaged {
            offset: 0,
            tail_only: false,
            error: Error::Corruption { .. },
            ..
        }
    ));
    let mut bytes = segment_with(&[(1, b"x")]);
    bytes[8] = 9;
    let error = decode_segment(path(), &bytes).unwrap_err();
    assert!(matches!(error, Error::UnsupportedVersion { found: 9, .. }));
}

/// A recycled file: segment 6 written over what segment 5 left. Segment 5's records read
/// as foreign bytes (their checksums are seeded with 5), so the segment ends after its own
/// last record, with nothing of 5's replayed and no damage reported.
#[test]
fn an_earlier_use_of_a_recycled_file_is_stale_not_records() {
    let old_payload = [9u8; 200];
    let old: Vec<(u64, &[u8])> = (1..=20).map(|seq| (seq, &old_payload[..])).collect();
    let mut bytes = numbered_segment_with(5, &old);
    let new = numbered_segment_with(6, &[(30, b"first of six"), (31, b"second")]);
    bytes[..new.len()].copy_from_slice(&new);
    let decoded = decode_segment(path(), &bytes).unwrap();
    let seqs: Vec<u64> = decoded.records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [30, 31]);
    assert_eq!(decoded.valid_length, new.len() as u64);
    assert_eq!(
        damage(&decoded.end),
        Some((true, true)),
        "{:?}",
        decoded.end
    );
    // Sealed, the same file ends at the marker.
    let mut sealed = new.clone();
    sealed.extend_from_slice(&end_marker(6));
    bytes[..sealed.len()].copy_from_slice(&sealed);
    let decoded = decode_segment(path(), &bytes).unwrap();
    assert!(matches!(decoded.end, SegmentEnd::Sealed));
    assert_eq!(decoded.records.len(), 2);
    assert_eq!(decoded.valid_length, sealed.len() as u64);
    // A version 1 file has no such seeds: foreign bytes after a bad record are damage.
    let mut legacy = legacy_segment_with(&[(1, b"one"), (2, b"two")]);
    legacy.extend_from_slice(&[0x5a; 64]);
    let decoded = decode_segment(path(), &legacy).unwrap();
    assert_eq!(
        damage(&decoded.end),
        Some((false, false)),
        "{:?}",
        decoded.end
    );
}

/// In a recycled file, damage with a record of the same segment after it is still damage,
/// wherever that record starts; so is damage followed by the segment's end marker.
#[test]
fn damage_before_a_later_record_of_a_recycled_segment_is_not_stale() {
    let old_payload = [3u8; 100];
    let old: Vec<(u64, &[u8])> = (1..=30).map(|seq| (seq, &old_payload[..])).collect();
    let stale = numbered_segment_with(5, &old);
    let new = numbered_segment_with(6, &[(40, b"alpha"), (41, b"bravo"), (42, b"charlie")]);
    let second_payload = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 5 + RECORD_HEADER_BYTES;
    for sealed in [false, true] {
        let mut written = numbered_segment_with(6, &[(40, b"alpha"), (41, b"bravo")]);
        if sealed {
            written.extend_from_slice(&end_marker(6));
        } else {
            written = new.clone();
        }
        let mut bytes = stale.clone();
        bytes[..written.len()].copy_from_slice(&written);
        bytes[second_payload + 1] ^= 0x10;
        let decoded = decode_segment(path(), &bytes).unwrap();
        assert_eq!(decoded.records.len(), 1, "sealed {sealed}");
        assert_eq!(
            damage(&decoded.end),
            Some((false, false)),
            "sealed {sealed}: {:?}",
            decoded.end
        );
        assert!(
            matches!(
                decoded.end,
                SegmentEnd::Damaged {
                    error: Error::ChecksumMismatch { .. },
                    ..
                }
            ),
            "sealed {sealed}: {:?}",
            decoded.end
        );
    }
}

/// Damage followed by a hole of zeros and then a record of the segment is damage, also when
/// that record's length and seq are zero (its header checked by the zero shortcut).
#[test]
fn a_record_after_zeros_is_found_even_an_all_zero_one() {
    for seq in [9, 0] {
        let payload: &[u8] = if seq == 0 { b"" } else { b"after the hole" };
        let mut bytes = numbered_segment_with(6, &[(1, b"first")]);
        let damaged_at = bytes.len();
        bytes.extend_from_slice(&[0xa5; 7]);
        bytes.extend_from_slice(&[0u8; 4096]);
        bytes.extend_from_slice(&record_header(6, seq, payload));
        bytes.extend_from_slice(payload);
        let decoded = decode_segment(path(), &bytes).unwrap();
        assert_eq!(decoded.valid_length, damaged_at as u64);
        assert_eq!(
            damage(&decoded.end),
            Some((false, false)),
            "seq {seq}: {:?}",
            decoded.end
        );
    }
    // Zeros are no record of the segment (a header of zeros does not check out): damage
    // followed by zeros and foreign bytes only is the end of what was written.
    let mut bytes = numbered_segment_with(6, &[(1, b"first")]);
    bytes.extend_from_slice(&[0xa5; 7]);
    bytes.extend_from_slice(&[0u8; 4096]);
    bytes.extend_from_slice(&[0x5a; 64]);
    let decoded = decode_segment(path(), &bytes).unwrap();
    assert_eq!(
        damage(&decoded.end),
        Some((true, true)),
        "{:?}",
        decoded.end
    );
}

/// Records queued for one segment and resealed for the next decode there, not in the first.
#[test]
fn resealed_records_belong_to_the_new_segment() {
    let queued = numbered_segment_with(1, &[(1, b"queued"), (2, b""), (3, b"late")]);
    let mut records = queued[SEGMENT_HEADER_BYTES..].to_vec();
    reseal(&mut records, 2);
    let mut second = segment_header(2).to_vec();
    second.extend_from_slice(&records);
    let decoded = decode_segment(path(), &second).unwrap();
    assert!(matches!(decoded.end, SegmentEnd::Clean));
    let seqs: Vec<u64> = decoded.records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let mut first = segment_header(1).to_vec();
    first.extend_from_slice(&records);
    assert!(decode_segment(path(), &first).unwrap().records.is_empty());
}

/// The decoder must survive anything: random bytes, and valid segments with random
/// mutations (which reach deeper than pure noise, past the magic and the checksums).
#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut random = SmallRng::seed_from_u64(0x5eed);
    let valid = segment_with(&[(1, b"alpha"), (2, b""), (3, &[7u8; 300]), (4, b"omega")]);
    for iteration in 0..4000 {
        let input = if iteration % 4 == 0 {
            let length = random.gen_range(0..200);
            let mut noise: Vec<u8> = (0..length).map(|_| random.gen()).collect();
            if iteration % 8 == 0 && noise.len() >= SEGMENT_HEADER_BYTES {
                noise[..SEGMENT_HEADER_BYTES].copy_from_slice(&segment_header(1));
            }
            noise
        } else {
            let mut mutated = valid.clone();
            for _ in 0..random.gen_range(1..4) {
                match random.gen_range(0..3) {
                    0 if !mutated.is_empty() => {
                        let position = random.gen_range(0..mutated.len());
                        mutated[position] = random.gen();
                    }
                    1 => mutated.truncate(random.gen_range(0..=mutated.len())),
                    _ => {
                        let position = random.gen_range(0..=mutated.len());
                        mutated.insert(position, random.gen());
                    }
                }
            }
            mutated
        };
        if let Ok(decoded) = decode_segment(path(), &input) {
            assert!(decoded.valid_length <= input.len() as u64);
            for record in &decoded.records {
                assert!(record.offset < decoded.valid_length);
            }
        }
    }
}
