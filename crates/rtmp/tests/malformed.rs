//! Replays hand-written hostile/malformed inputs through the public API: each must produce the
//! expected error (never a panic or an unbounded allocation).

use livetape_rtmp::{
    HANDSHAKE_SIZE, PRE_PUBLISH_MAX_MESSAGE_SIZE, PRE_PUBLISH_MAX_PARTIAL_BYTES, RtmpError,
    ServerSession, SessionConfig,
};

fn handshake() -> Vec<u8> {
    let mut b = vec![3u8];
    b.resize(1 + 2 * HANDSHAKE_SIZE, 0);
    b
}

/// Format 0 chunk header on chunk stream `csid` (2..=63).
fn fmt0(csid: u8, len: u32, type_id: u8) -> Vec<u8> {
    let mut h = vec![csid, 0, 0, 0];
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h.push(type_id);
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

fn message(csid: u8, type_id: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 128);
    let mut m = fmt0(csid, payload.len() as u32, type_id);
    m.extend_from_slice(payload);
    m
}

/// A `connect` command whose AMF0 body is `body` (may exceed one chunk; split at 128).
fn command(body: &[u8]) -> Vec<u8> {
    let mut m = fmt0(3, body.len() as u32, 20);
    for (i, c) in body.chunks(128).enumerate() {
        if i > 0 {
            m.push(0xc3);
        }
        m.extend_from_slice(c);
    }
    m
}

fn run(after_handshake: &[u8]) -> Result<(), RtmpError> {
    let mut input = handshake();
    input.extend_from_slice(after_handshake);
    let mut session = ServerSession::new(SessionConfig::default());
    session.handle_input(&input, &mut Vec::new())
}

#[test]
fn malformed_inputs_replay() {
    let connect_prefix = b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00";
    let deep: Vec<u8> = connect_prefix
        .iter()
        .copied()
        .chain([3, 0, 1, b'k'].repeat(1000))
        .collect();
    let huge_array: Vec<u8> = connect_prefix
        .iter()
        .copied()
        .chain([0x0a, 0xff, 0xff, 0xff, 0xff, 0x05])
        .collect();
    let truncated_string: Vec<u8> = connect_prefix
        .iter()
        .copied()
        .chain([0x02, 0xff, 0xff, b'a'])
        .collect();
    let many_streams: Vec<u8> = (0..=255u8)
        .flat_map(|b| {
            // 2-byte basic headers: chunk stream 64 + b, each a 200-byte message left partial.
            let mut m = vec![0x00, b, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
            m.extend_from_slice(&[0; 128]);
            m
        })
        .collect();

    type Case = (&'static str, Vec<u8>, fn(&RtmpError) -> bool);
    let cases: Vec<Case> = vec![
        ("type 3 on a fresh chunk stream", vec![0xc5, 1, 2, 3], |e| {
            matches!(e, RtmpError::MissingPreviousHeader { csid: 5, fmt: 3 })
        }),
        ("16 MiB message", fmt0(4, 0xff_ffff, 9), |e| {
            matches!(e, RtmpError::MessageTooLarge { .. })
        }),
        (
            "chunk size with top bit",
            message(2, 1, &[0x80, 0, 0, 0]),
            |e| matches!(e, RtmpError::InvalidChunkSize(0x8000_0000)),
        ),
        ("short chunk size", message(2, 1, &[0, 1]), |e| {
            matches!(e, RtmpError::ShortMessage { .. })
        }),
        ("short user control", message(2, 4, &[0]), |e| {
            matches!(e, RtmpError::ShortMessage { .. })
        }),
        ("short ping", message(2, 4, &[0, 6, 1]), |e| {
            matches!(e, RtmpError::ShortMessage { .. })
        }),
        ("nested objects", command(&deep), |e| {
            matches!(
                e,
                RtmpError::Amf0 {
                    reason: "nesting too deep",
                    ..
                }
            )
        }),
        (
            "strict array claiming 4G items",
            command(&huge_array),
            |e| matches!(e, RtmpError::Amf0 { .. }),
        ),
        ("string past the end", command(&truncated_string), |e| {
            matches!(e, RtmpError::Amf0 { .. })
        }),
        (
            "command before connect",
            command(b"\x02\x00\x0ccreateStream"),
            |e| matches!(e, RtmpError::Protocol(_)),
        ),
        ("too many chunk streams", many_streams, |e| {
            matches!(
                e,
                RtmpError::TooManyChunkStreams { .. } | RtmpError::TooManyPartialMessages { .. }
            )
        }),
    ];
    for (name, input, expected) in cases {
        match run(&input) {
            Err(e) if expected(&e) => {}
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    // Before `publish` (no auth yet) the peer gets small bounds, whatever its chunk size:
    // the attack (Set Chunk Size 4 MiB, then the first chunks of 8 MiB messages).
    let mut big_chunks = message(2, 1, &(4u32 << 20).to_be_bytes());
    big_chunks.extend(fmt0(4, 8 << 20, 9));
    big_chunks.extend(vec![0u8; 64]);
    match run(&big_chunks) {
        Err(RtmpError::MessageTooLarge { max, .. }) => {
            assert_eq!(max, PRE_PUBLISH_MAX_MESSAGE_SIZE)
        }
        other => panic!("8 MiB message before publish: {other:?}"),
    }
    // Messages just under the bound, left partial on three chunk streams: the partial budget.
    let chunk = 60_000u32;
    let mut partials = message(2, 1, &chunk.to_be_bytes());
    for csid in 4..7u8 {
        partials.extend(fmt0(csid, PRE_PUBLISH_MAX_MESSAGE_SIZE, 9));
        partials.extend(vec![0u8; chunk as usize]);
    }
    match run(&partials) {
        Err(RtmpError::PartialBytesExceeded { max }) => {
            assert_eq!(max, PRE_PUBLISH_MAX_PARTIAL_BYTES)
        }
        other => panic!("partial messages before publish: {other:?}"),
    }

    // Non-RTMP first bytes fail at C0.
    let mut s = ServerSession::new(SessionConfig::default());
    assert_eq!(
        s.handle_input(b"GET / HTTP/1.1\r\n", &mut Vec::new()),
        Err(RtmpError::UnsupportedVersion(b'G'))
    );
}
