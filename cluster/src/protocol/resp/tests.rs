use super::*;
use crate::protocol::{closes_connection, error_reply_text, Limits};
use crate::Error;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn encoded(value: &RespValue) -> Vec<u8> {
    let mut output = Vec::new();
    encode(value, &mut output);
    output
}

fn arguments(words: &[&[u8]]) -> RequestFrame {
    words.iter().map(|word| word.to_vec()).collect()
}

/// Decodes every request in `buffer`, feeding it to one decoder in the given pieces.
fn decode_all(pieces: &[&[u8]], limits: Limits) -> crate::Result<Vec<RequestFrame>> {
    let mut decoder = Decoder::new(limits);
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        while let Some((frame, consumed)) = decoder.decode(&buffer)? {
            assert!(consumed > 0 && consumed <= buffer.len());
            buffer.drain(..consumed);
            frames.push(frame);
        }
    }
    Ok(frames)
}

fn decode_error(input: &[u8], limits: Limits) -> Error {
    match decode_all(&[input], limits) {
        Err(error) => error,
        Ok(frames) => panic!("{input:?} decoded to {frames:?}"),
    }
}

#[test]
fn golden_bytes_of_each_reply_type() {
    let cases: Vec<(RespValue, &[u8])> = vec![
        (RespValue::SimpleString("OK".into()), b"+OK\r\n"),
        (RespValue::SimpleString("a\r\nb".into()), b"+a  b\r\n"),
        (RespValue::Error("ERR bad".into()), b"-ERR bad\r\n"),
        (RespValue::Integer(0), b":0\r\n"),
        (RespValue::Integer(-42), b":-42\r\n"),
        (RespValue::Integer(i64::MIN), b":-9223372036854775808\r\n"),
        (RespValue::Integer(i64::MAX), b":9223372036854775807\r\n"),
        (RespValue::bulk("foo"), b"$3\r\nfoo\r\n"),
        (RespValue::bulk(""), b"$0\r\n\r\n"),
        (RespValue::bulk(b"a\r\n\0".to_vec()), b"$4\r\na\r\n\0\r\n"),
        (RespValue::BulkString(None), b"$-1\r\n"),
        (RespValue::array(vec![]), b"*0\r\n"),
        (RespValue::Array(None), b"*-1\r\n"),
        (
            RespValue::array(vec![
                RespValue::Integer(1),
                RespValue::array(vec![RespValue::bulk("x"), RespValue::BulkString(None)]),
            ]),
            b"*2\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n",
        ),
    ];
    for (value, golden) in cases {
        assert_eq!(encoded(&value), golden, "{value:?}");
        if !matches!(&value, RespValue::SimpleString(text) if text.contains('\r')) {
            let decoded = decode_reply(golden, &Limits::default()).unwrap();
            assert_eq!(decoded, Some((value, golden.len())));
        }
    }
}

#[test]
fn helpers_match_the_tree_encoder() {
    let mut output = Vec::new();
    write_ok(&mut output);
    write_simple_string(&mut output, "PONG");
    write_error(&mut output, "ERR x\ny");
    write_integer(&mut output, 7);
    write_bulk(&mut output, b"v");
    write_null_bulk(&mut output);
    write_array_header(&mut output, 1);
    write_null_array(&mut output);
    assert_eq!(
        output,
        b"+OK\r\n+PONG\r\n-ERR x y\r\n:7\r\n$1\r\nv\r\n$-1\r\n*1\r\n*-1\r\n"
    );
    let mut versioned = Vec::new();
    let siblings: [Option<&[u8]>; 2] = [Some(b"a"), None];
    write_versioned_reply(&mut versioned, b"ctx", siblings.into_iter());
    assert_eq!(
        versioned,
        b"*2\r\n$3\r\nctx\r\n*2\r\n$1\r\na\r\n$-1\r\n".as_slice()
    );
}

const PIPELINE: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\
*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n\
PING\r\n\
*0\r\n\
\r\n\
  set  \"a b\\x41\\n\" 'it\\'s'  \n\
*1\r\n$4\r\nQUIT\r\n";

fn pipeline_frames() -> Vec<RequestFrame> {
    vec![
        arguments(&[b"GET", b"k"]),
        arguments(&[b"SET", b"k\r\n", b""]),
        arguments(&[b"PING"]),
        arguments(&[b"set", b"a bA\n", b"it's"]),
        arguments(&[b"QUIT"]),
    ]
}

#[test]
fn pipelined_requests_decode_whole() {
    assert_eq!(
        decode_all(&[PIPELINE], Limits::default()).unwrap(),
        pipeline_frames()
    );
}

#[test]
fn pipelined_requests_decode_the_same_split_at_every_byte() {
    for split in 0..=PIPELINE.len() {
        let (first, second) = PIPELINE.split_at(split);
        let frames = decode_all(&[first, second], Limits::default()).unwrap();
        assert_eq!(frames, pipeline_frames(), "split at {split}");
    }
    let one_byte_pieces: Vec<&[u8]> = PIPELINE.chunks(1).collect();
    assert_eq!(
        decode_all(&one_byte_pieces, Limits::default()).unwrap(),
        pipeline_frames()
    );
}

#[test]
fn incomplete_input_consumes_nothing() {
    let mut decoder = Decoder::new(Limits::default());
    for prefix in [
        &b""[..],
        b"*",
        b"*2\r",
        b"*2\r\n$3\r\nGE",
        b"PIN",
        b"*1\r\n$1\r\nx\r",
    ] {
        assert!(decoder.decode(prefix).unwrap().is_none(), "{prefix:?}");
    }
}

#[test]
fn inline_commands() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"PING\r\n", &[b"PING"]),
        (b"PING\n", &[b"PING"]),
        (b"get   key\t\r\n", &[b"get", b"key"]),
        (b"ECHO \"\"\r\n", &[b"ECHO", b""]),
        (b"SET k \"\\xff\\x0\"\r\n", &[b"SET", b"k", b"\xffx0"]),
        (b"SET k 'a\\b'\r\n", &[b"SET", b"k", b"a\\b"]),
    ];
    for (input, expected) in cases {
        let frames = decode_all(&[input], Limits::default()).unwrap();
        assert_eq!(frames, vec![arguments(expected)], "{input:?}");
    }
}

#[test]
fn malformed_requests_give_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"*x\r\n", "invalid multibulk length"),
        (b"*-2\r\n", "invalid multibulk length"),
        (b"*1\r\n", ""),
        (b"*\r\n", "invalid multibulk length"),
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$1\r\nab\r\n", "expected CRLF after bulk string"),
        (b"*1\n", "expected CRLF at the end of the multibulk length"),
        (b"*1\r\n$1\n", "expected CRLF at the end of the bulk length"),
        (
            b"*99999999999999999999999\r\n",
            "too big multibulk length line",
        ),
        (
            b"*1\r\n$1111111111111111111111111\r\n",
            "too big bulk length line",
        ),
        (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
        (b"SET k \"abc\r\n", "unbalanced quotes"),
        (b"SET k \"abc\"def\r\n", "unbalanced quotes"),
        (b"SET k 'abc\r\n", "unbalanced quotes"),
    ];
    for (input, expected) in cases {
        match decode_all(&[input], Limits::default()) {
            Ok(frames) if expected.is_empty() => assert!(frames.is_empty()),
            Err(error @ Error::Protocol(_)) => {
                let text = error_reply_text(&error);
                assert!(text.starts_with("ERR Protocol error: "), "{text}");
                assert!(text.contains(expected), "{input:?}: {text}");
                assert!(closes_connection(&error));
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

#[test]
fn every_request_limit_is_enforced() {
    let limits = Limits {
        bulk_length_bytes_max: 4,
        array_length_max: 3,
        inline_length_bytes_max: 8,
        frame_size_bytes_max: 30,
        ..Limits::default()
    };
    let within = b"*3\r\n$4\r\nabcd\r\n$1\r\nx\r\n$0\r\n\r\nPING 1\n";
    assert_eq!(decode_all(&[within], limits.clone()).unwrap().len(), 2);
    let cases: &[(&[u8], &str)] = &[
        (b"*4\r\n", "multibulk argument count"),
        (b"*1\r\n$5\r\n", "bulk string length"),
        (b"PING 1 23", "inline command length"),
        (
            b"*3\r\n$4\r\naaaa\r\n$4\r\nbbbb\r\n$4\r\n",
            "request frame size",
        ),
        (b"a b c d\n", "inline argument count"),
    ];
    for (input, what) in cases {
        match decode_error(input, limits.clone()) {
            Error::LimitExceeded { what: found, .. } => assert_eq!(&found, what),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // A limit error is a framing error: the reply is Redis's and the connection closes.
    let error = decode_error(b"*4\r\n", limits);
    assert!(closes_connection(&error));
    assert_eq!(
        error_reply_text(&error),
        "ERR Protocol error: multibulk argument count of 4 exceeds the limit of 3"
    );
}

#[test]
fn every_reply_limit_is_enforced() {
    let limits = Limits {
        bulk_length_bytes_max: 4,
        array_length_max: 3,
        inline_length_bytes_max: 8,
        frame_size_bytes_max: 30,
        reply_depth_max: 2,
        ..Limits::default()
    };
    let cases: &[(&[u8], &str)] = &[
        (b"$5\r\n", "bulk string length"),
        (b"*4\r\n", "array length"),
        (b"*1\r\n*1\r\n*1\r\n", "reply nesting depth"),
        (
            b"*3\r\n$4\r\naaaa\r\n$4\r\nbbbb\r\n$4\r\ncccc\r\n",
            "reply frame size",
        ),
    ];
    for (input, what) in cases {
        match decode_reply(input, &limits) {
            Err(Error::LimitExceeded { what: found, .. }) => assert_eq!(&found, what),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert!(matches!(
        decode_reply(b"+123456789\r\n", &limits),
        Err(Error::Protocol(_))
    ));
    assert!(decode_reply(b"*1\r\n*1\r\n:1\r\n", &limits)
        .unwrap()
        .is_some());
}

#[test]
fn malformed_replies_give_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"?\r\n", "invalid reply type byte '?'"),
        (b":x\r\n", "invalid integer"),
        (b":1\n", "expected CRLF"),
        (b"$-2\r\n", "invalid bulk length"),
        (b"*-2\r\n", "invalid array length"),
        (b"$1\r\nab\r\n", "expected CRLF after bulk string"),
    ];
    for (input, expected) in cases {
        match decode_reply(input, &Limits::default()) {
            Err(Error::Protocol(text)) => assert!(text.contains(expected), "{input:?}: {text}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    for prefix in [&b""[..], b"*2\r\n:1\r\n", b"$3\r\nab", b"+OK"] {
        assert!(decode_reply(prefix, &Limits::default()).unwrap().is_none());
    }
}

fn random_value(random: &mut SmallRng, depth: usize) -> RespValue {
    match random.gen_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => RespValue::SimpleString("OK".into()),
        1 => RespValue::Error("ERR no".into()),
        2 => RespValue::Integer(random.gen()),
        3 => RespValue::BulkString(None),
        4 => RespValue::bulk(
            (0..random.gen_range(0..20))
                .map(|_| random.gen())
                .collect::<Vec<u8>>(),
        ),
        5 => RespValue::Array(None),
        _ => RespValue::array(
            (0..random.gen_range(0..4))
                .map(|_| random_value(random, depth + 1))
                .collect(),
        ),
    }
}

#[test]
fn random_replies_round_trip() {
    let mut random = SmallRng::seed_from_u64(7);
    for _ in 0..2000 {
        let value = random_value(&mut random, 0);
        let bytes = encoded(&value);
        assert_eq!(
            decode_reply(&bytes, &Limits::default()).unwrap(),
            Some((value, bytes.len()))
        );
        for cut in 0..bytes.len() {
            assert!(decode_reply(&bytes[..cut], &Limits::default())
                .unwrap()
                .is_none());
        }
    }
}

/// Runs the decoders over `input` in `piece_count` pieces: nothing may panic, every
/// step must consume or ask for more, and the loop is bounded by the input size.
fn must_not_panic(input: &[u8], piece_count: usize, limits: &Limits) {
    let _ = decode_reply(input, limits);
    let mut decoder = Decoder::new(limits.clone());
    let mut buffer = Vec::new();
    let piece_length = input.len() / piece_count.max(1) + 1;
    for piece in input.chunks(piece_length) {
        buffer.extend_from_slice(piece);
        loop {
            match decoder.decode(&buffer) {
                Ok(Some((frame, consumed))) => {
                    assert!(consumed > 0 && consumed <= buffer.len());
                    assert!(!frame.is_empty());
                    buffer.drain(..consumed);
                    let _ = crate::protocol::Request::parse(frame, limits);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut random = SmallRng::seed_from_u64(42);
    let small = Limits {
        bulk_length_bytes_max: 64,
        array_length_max: 8,
        inline_length_bytes_max: 32,
        frame_size_bytes_max: 256,
        reply_depth_max: 4,
        ..Limits::default()
    };
    let alphabet = b"*$:+-\r\n0123456789 \"'\\xPINGSETkv";
    for round in 0..5000 {
        let limits = if round % 2 == 0 {
            &small
        } else {
            &Limits::default()
        };
        let length = random.gen_range(0..80);
        let input: Vec<u8> = match round % 3 {
            0 => (0..length).map(|_| random.gen()).collect(),
            1 => (0..length)
                .map(|_| alphabet[random.gen_range(0..alphabet.len())])
                .collect(),
            _ => {
                let mut mutated = PIPELINE.to_vec();
                for _ in 0..random.gen_range(1..4) {
                    let at = random.gen_range(0..mutated.len());
                    match random.gen_range(0..3) {
                        0 => mutated[at] = random.gen(),
                        1 => {
                            mutated.remove(at);
                        }
                        _ => mutated.insert(at, alphabet[random.gen_range(0..alphabet.len())]),
                    }
                }
                mutated
            }
        };
        must_not_panic(&input, random.gen_range(1..5), limits);
    }
}

#[test]
fn a_buffer_that_shrinks_between_calls_restarts_instead_of_panicking() {
    let mut decoder = Decoder::new(Limits::default());
    assert!(decoder
        .decode(b"*2\r\n$3\r\nGET\r\n$5\r\nab")
        .unwrap()
        .is_none());
    let (frame, consumed) = decoder.decode(b"PING\r\n").unwrap().unwrap();
    assert_eq!((frame, consumed), (arguments(&[b"PING"]), 6));
}

#[test]
fn a_large_argument_arriving_in_pieces_resumes_where_it_stopped() {
    let value = vec![b'v'; 100_000];
    let mut request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n".to_vec();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\n");
    let pieces: Vec<&[u8]> = request.chunks(1000).collect();
    let frames = decode_all(&pieces, Limits::default()).unwrap();
    assert_eq!(frames, vec![vec![b"SET".to_vec(), b"k".to_vec(), value]]);
}

#[test]
fn decode_data_reads_plain_get_and_set_in_place() {
    let decoder = Decoder::new(Limits::default());
    let input = b"*2\r\n$3\r\ngEt\r\n$3\r\nkey\r\n*1\r\n$4\r\nPING\r\n";
    let (frame, used) = decoder.decode_data(input).expect("a GET");
    assert_eq!(used, 22);
    assert_eq!(frame, DataFrame::Get { key: 17..20 });
    let input = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n";
    let (frame, used) = decoder.decode_data(input).expect("a SET");
    assert_eq!(used, input.len());
    assert_eq!(
        frame,
        DataFrame::Set {
            key: 17..18,
            value: 24..24
        }
    );
}

#[test]
fn decode_data_leaves_everything_else_to_decode() {
    let limits = Limits {
        bulk_length_bytes_max: 8,
        ..Limits::default()
    };
    let decoder = Decoder::new(limits);
    let refused: [&[u8]; 12] = [
        b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r",            // incomplete
        b"*2\r\n$3\r\nGET\r\n$3\r\nkeyX\n",           // no CRLF after the key
        b"*3\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\nv\r\n", // GET with two arguments
        b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n",            // SET without a value
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n", // SET with an option
        b"*2\r\n$4\r\nMGET\r\n$1\r\nk\r\n",           // another command
        b"*2\r\n$3\r\nGET\r\n$9\r\n123456789\r\n",    // over the bulk limit
        b"*2\r\n$3\r\nGET\r\n$-1\r\n",                // negative length
        b"*2\r\n$3\r\nGET\r\n$01x\r\nk\r\n",          // bad length
        b"*02\r\n$3\r\nGET\r\n$1\r\nk\r\n",           // unusual count spelling
        b"GET k\r\n",                                 // inline
        b"",
    ];
    for input in refused {
        assert_eq!(decoder.decode_data(input), None, "{input:?}");
    }
}

#[test]
fn decode_data_agrees_with_decode_on_random_frames() {
    let mut random = SmallRng::seed_from_u64(7);
    let limits = Limits {
        bulk_length_bytes_max: 16,
        frame_size_bytes_max: 40,
        ..Limits::default()
    };
    let names: [&[u8]; 5] = [b"GET", b"get", b"SET", b"sEt", b"DEL"];
    let mut accepted = 0;
    for _ in 0..2000 {
        let count = random.gen_range(1..4);
        let mut words: Vec<Vec<u8>> = vec![names[random.gen_range(0..names.len())].to_vec()];
        for _ in 1..count {
            let length = random.gen_range(0..18);
            words.push(
                (0..length)
                    .map(|_| random.gen_range(b'\n'..=b'z'))
                    .collect(),
            );
        }
        let mut bytes = Vec::new();
        write_array_header(&mut bytes, words.len());
        for word in &words {
            write_bulk(&mut bytes, word);
        }
        let cut = if random.gen_bool(0.5) {
            bytes.len()
        } else {
            random.gen_range(bytes.len() / 2..=bytes.len())
        };
        let input = &bytes[..cut];
        let fast = Decoder::new(limits.clone()).decode_data(input);
        let general = Decoder::new(limits.clone()).decode(input);
        let Some((frame, used)) = fast else { continue };
        accepted += 1;
        let (arguments, consumed) = general.unwrap().expect("decode agrees on a whole frame");
        assert_eq!(used, consumed);
        let (key, value) = match frame {
            DataFrame::Get { key } => (key, None),
            DataFrame::Set { key, value } => (key, Some(value)),
        };
        assert_eq!(&input[key], &arguments[1][..]);
        assert_eq!(
            value.map(|value| input[value].to_vec()),
            arguments.get(2).cloned()
        );
        assert_eq!(arguments.len(), 2 + usize::from(arguments.len() == 3));
    }
    assert!(accepted > 100, "only {accepted} frames took the fast path");
}
