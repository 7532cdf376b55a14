use super::*;
use crate::HANDSHAKE_SIZE;
use proptest::prelude::*;

fn s(v: &str) -> Amf0Value {
    Amf0Value::String(v.into())
}

fn n(v: f64) -> Amf0Value {
    Amf0Value::Number(v)
}

fn handshake() -> Vec<u8> {
    let mut b = vec![3u8];
    b.extend((0..HANDSHAKE_SIZE).map(|i| (i * 7) as u8));
    b.extend(std::iter::repeat_n(0u8, HANDSHAKE_SIZE));
    b
}

/// Client → server message at the initial chunk size 128.
fn msg(csid: u8, ts: u32, type_id: u8, msid: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_message(&mut out, 128, csid, ts, type_id, msid, payload);
    out.to_vec()
}

fn command(msid: u32, values: &[Amf0Value]) -> Vec<u8> {
    let mut body = Vec::new();
    values.iter().for_each(|v| v.encode(&mut body));
    msg(3, 0, COMMAND_AMF0, msid, &body)
}

fn connect_cmd() -> Vec<u8> {
    command(
        0,
        &[
            s("connect"),
            n(1.0),
            Amf0Value::Object(vec![
                ("app".into(), s("live?vhost=a.example")),
                ("tcUrl".into(), s("rtmp://127.0.0.1/live?vhost=a.example")),
                ("objectEncoding".into(), n(3.0)),
                (
                    "fourCcList".into(),
                    Amf0Value::StrictArray(vec![s("hvc1"), s("av01")]),
                ),
            ]),
        ],
    )
}

fn publish_cmd(name: &str) -> Vec<u8> {
    command(
        1,
        &[s("publish"), n(5.0), Amf0Value::Null, s(name), s("live")],
    )
}

/// Decodes everything the server wrote, following its Set Chunk Size like a client would.
struct Peer {
    decoder: ChunkDecoder,
}

impl Peer {
    fn new() -> Self {
        Self {
            decoder: ChunkDecoder::new(MAX_MESSAGE_SIZE),
        }
    }

    fn read(&mut self, session: &mut ServerSession) -> Vec<RawMessage> {
        let mut buf = BytesMut::from(&session.take_output().unwrap_or_default()[..]);
        let mut out = Vec::new();
        while let Some(m) = self.decoder.decode(&mut buf).unwrap() {
            if m.type_id == SET_CHUNK_SIZE {
                self.decoder
                    .set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
            }
            out.push(m);
        }
        assert!(buf.is_empty());
        out
    }
}

fn values(m: &RawMessage) -> Vec<Amf0Value> {
    assert_eq!(m.type_id, COMMAND_AMF0);
    amf0::decode_all(&m.payload).unwrap()
}

fn feed(session: &mut ServerSession, bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    session.handle_input(bytes, &mut events).unwrap();
    events
}

/// Handshake + connect, output drained.
fn connected() -> (ServerSession, Peer) {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut peer = Peer::new();
    let mut first = handshake();
    first.extend(connect_cmd());
    let ev = feed(&mut session, &first);
    assert_eq!(ev.len(), 1);
    let out = session.take_output().unwrap();
    // Skip S0+S1+S2 before decoding chunks.
    let mut rest = BytesMut::from(&out[1 + 2 * HANDSHAKE_SIZE..]);
    while let Some(m) = peer.decoder.decode(&mut rest).unwrap() {
        if m.type_id == SET_CHUNK_SIZE {
            peer.decoder.set_chunk_size(60_000);
        }
    }
    (session, peer)
}

/// Connected, publish of "cam?k=v" accepted, output drained.
fn publishing() -> (ServerSession, Peer) {
    let (mut session, mut peer) = connected();
    let ev = feed(&mut session, &publish_cmd("cam?k=v"));
    assert!(matches!(ev[..], [Event::PublishRequested { .. }]));
    session.accept_publish().unwrap();
    peer.read(&mut session);
    (session, peer)
}

fn media(events: &[Event]) -> Vec<(MediaKind, u64, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Media(f) => Some((f.kind, f.dts_ms, f.payload.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_reply_and_version_check() {
    let config = SessionConfig {
        handshake_time_ms: 0x0102_0304,
        handshake_random: [0xab; HANDSHAKE_RANDOM_LEN],
        ..SessionConfig::default()
    };
    let mut session = ServerSession::new(config);
    let hs = handshake();
    // C0+C1 minus one byte: nothing yet.
    assert!(feed(&mut session, &hs[..HANDSHAKE_SIZE]).is_empty());
    assert!(session.take_output().is_none());
    feed(&mut session, &hs[HANDSHAKE_SIZE..HANDSHAKE_SIZE + 1]);
    let out = session.take_output().unwrap();
    assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
    assert_eq!(&out[..9], &[3, 1, 2, 3, 4, 0, 0, 0, 0]);
    assert!(out[9..1 + HANDSHAKE_SIZE].iter().all(|&b| b == 0xab));
    assert_eq!(&out[1 + HANDSHAKE_SIZE..], &hs[1..1 + HANDSHAKE_SIZE]);
    feed(&mut session, &hs[HANDSHAKE_SIZE + 1..]);
    assert_eq!(session.bytes_received(), hs.len() as u64);
    assert!(session.take_output().is_none());

    let mut bad = ServerSession::new(SessionConfig::default());
    let mut events = Vec::new();
    assert_eq!(
        bad.handle_input(&[6], &mut events),
        Err(RtmpError::UnsupportedVersion(6))
    );
    assert_eq!(bad.handle_input(&[3], &mut events), Err(RtmpError::Failed));
}

#[test]
fn connect_reply_sequence() {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut input = handshake();
    input.extend(connect_cmd());
    let events = feed(&mut session, &input);
    assert_eq!(
        events,
        [Event::Connected {
            app: "live".into(),
            app_param: "vhost=a.example".into(),
            tc_url: "rtmp://127.0.0.1/live?vhost=a.example".into(),
            object_encoding: 3.0,
        }]
    );
    assert_eq!(session.four_cc_list(), ["hvc1", "av01"]);
    let out = session.take_output().unwrap();
    let mut rest = BytesMut::from(&out[1 + 2 * HANDSHAKE_SIZE..]);
    let mut peer = Peer::new();
    let mut msgs = Vec::new();
    while let Some(m) = peer.decoder.decode(&mut rest).unwrap() {
        if m.type_id == SET_CHUNK_SIZE {
            peer.decoder.set_chunk_size(60_000);
        }
        msgs.push(m);
    }
    assert!(rest.is_empty());
    let kinds: Vec<_> = msgs
        .iter()
        .map(|m| (m.type_id, m.payload.to_vec()))
        .collect();
    assert_eq!(
        kinds[0],
        (WINDOW_ACK_SIZE, 2_500_000u32.to_be_bytes().to_vec())
    );
    assert_eq!(kinds[1], (SET_PEER_BANDWIDTH, vec![0, 0x26, 0x25, 0xa0, 2]));
    assert_eq!(kinds[2], (SET_CHUNK_SIZE, 60_000u32.to_be_bytes().to_vec()));
    let v = values(&msgs[3]);
    assert_eq!(v[0], s("_result"));
    assert_eq!(v[1], n(1.0));
    assert_eq!(v[3].get("code"), Some(&s("NetConnection.Connect.Success")));
    assert_eq!(v[3].get("objectEncoding"), Some(&n(3.0)));
}

#[test]
fn publish_flow_media_and_unpublish() {
    let (mut session, mut peer) = connected();
    let mut input = command(0, &[s("releaseStream"), n(2.0), Amf0Value::Null, s("cam")]);
    input.extend(command(
        0,
        &[s("FCPublish"), n(3.0), Amf0Value::Null, s("cam")],
    ));
    input.extend(command(0, &[s("createStream"), n(4.0), Amf0Value::Null]));
    assert!(feed(&mut session, &input).is_empty());
    let replies: Vec<_> = peer.read(&mut session).iter().map(values).collect();
    assert_eq!(replies.len(), 3);
    assert_eq!((&replies[0][0], &replies[0][1]), (&s("_result"), &n(2.0)));
    assert_eq!((&replies[1][0], &replies[1][1]), (&s("_result"), &n(3.0)));
    assert_eq!(replies[2], [s("_result"), n(4.0), Amf0Value::Null, n(1.0)]);

    let mut input = publish_cmd("cam?txSecret=abc&txTime=5F5E0FFF");
    // Media before the decision is dropped.
    input.extend(msg(6, 0, VIDEO, 1, &[0x17, 0, 0, 0, 0, 1]));
    let events = feed(&mut session, &input);
    assert_eq!(
        events,
        [Event::PublishRequested {
            app: "live".into(),
            stream_name: "cam".into(),
            stream_param: "txSecret=abc&txTime=5F5E0FFF".into(),
            tc_url: "rtmp://127.0.0.1/live?vhost=a.example".into(),
            publish_type: "live".into(),
        }]
    );
    assert!(peer.read(&mut session).is_empty());
    session.accept_publish().unwrap();
    assert!(session.accept_publish().is_err());
    let out = peer.read(&mut session);
    assert_eq!(out[0].type_id, USER_CONTROL);
    assert_eq!(&out[0].payload[..], &[0, 0, 0, 0, 0, 1]);
    assert_eq!(out[1].stream_id, 1);
    let status = values(&out[1]);
    assert_eq!(status[0], s("onStatus"));
    assert_eq!(status[3].get("code"), Some(&s("NetStream.Publish.Start")));

    let mut meta = Vec::new();
    for v in [
        s("@setDataFrame"),
        s("onMetaData"),
        Amf0Value::EcmaArray(vec![]),
    ] {
        v.encode(&mut meta);
    }
    let mut bare = Vec::new();
    for v in [s("onMetaData"), Amf0Value::Null] {
        v.encode(&mut bare);
    }
    let mut other = Vec::new();
    s("|RtmpSampleAccess").encode(&mut other);
    let mut input = msg(4, 0, DATA_AMF0, 1, &meta);
    input.extend(msg(4, 0, DATA_AMF0, 1, &bare));
    input.extend(msg(4, 0, DATA_AMF0, 1, &other));
    input.extend(msg(6, 0, VIDEO, 1, &[0x17, 0, 0, 0, 0, 1]));
    input.extend(msg(4, 10, AUDIO, 1, &[0xaf, 1, 9]));
    input.extend(msg(4, 11, AUDIO, 1, &[]));
    input.extend(command(
        0,
        &[s("FCUnpublish"), n(6.0), Amf0Value::Null, s("cam")],
    ));
    input.extend(command(
        0,
        &[s("deleteStream"), n(7.0), Amf0Value::Null, n(1.0)],
    ));
    input.extend(msg(6, 40, VIDEO, 1, &[0x27, 1, 0, 0, 0]));
    let events = feed(&mut session, &input);
    assert_eq!(
        media(&events),
        [
            (MediaKind::Script, 0, meta[16..].to_vec()),
            (MediaKind::Script, 0, bare.clone()),
            (MediaKind::Video, 0, vec![0x17, 0, 0, 0, 0, 1]),
            (MediaKind::Audio, 10, vec![0xaf, 1, 9]),
        ]
    );
    let ends: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Unpublished { .. }))
        .collect();
    assert_eq!(
        ends,
        [&Event::Unpublished {
            reason: UnpublishReason::FcUnpublish
        }]
    );
}

#[test]
fn reject_publish_sends_error_status() {
    let (mut session, mut peer) = connected();
    assert!(session.reject_publish("x", "y").is_err());
    feed(&mut session, &publish_cmd("bad"));
    session
        .reject_publish("NetStream.Publish.BadName", "stream name in use")
        .unwrap();
    let out = peer.read(&mut session);
    let status = values(&out[0]);
    assert_eq!(status[3].get("level"), Some(&s("error")));
    assert_eq!(status[3].get("code"), Some(&s("NetStream.Publish.BadName")));
    assert_eq!(status[3].get("description"), Some(&s("stream name in use")));
    assert!(session.accept_publish().is_err());
    let events = feed(&mut session, &msg(6, 0, VIDEO, 1, &[0x17, 1, 0, 0, 0]));
    assert!(events.is_empty());
}

#[test]
fn ping_gets_pong() {
    let (mut session, mut peer) = connected();
    feed(
        &mut session,
        &msg(2, 0, USER_CONTROL, 0, &[0, 6, 0xde, 0xad, 0xbe, 0xef]),
    );
    let out = peer.read(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_id, USER_CONTROL);
    assert_eq!(&out[0].payload[..], &[0, 7, 0xde, 0xad, 0xbe, 0xef]);
}

#[test]
fn acknowledges_each_window() {
    let (mut session, mut peer) = publishing();
    feed(
        &mut session,
        &msg(2, 0, WINDOW_ACK_SIZE, 0, &5000u32.to_be_bytes()),
    );
    let before = session.bytes_received();
    let frame = msg(6, 0, VIDEO, 1, &[0x27; 1000]);
    let mut acks = Vec::new();
    for _ in 0..12 {
        feed(&mut session, &frame);
        for m in peer.read(&mut session) {
            assert_eq!(m.type_id, ACKNOWLEDGEMENT);
            acks.push((
                u32::from_be_bytes(m.payload[..4].try_into().unwrap()),
                session.bytes_received(),
            ));
        }
    }
    // 12 × 1016 bytes (+ handshake/connect before) cross the 5000-byte window twice or thrice.
    assert!(acks.len() >= 2, "{acks:?}");
    for (seq, total) in &acks {
        assert_eq!(u64::from(*seq), *total);
    }
    assert!(acks.last().unwrap().1 - before >= 5000);
}

#[test]
fn timestamps_unwrap_past_32_bits() {
    let (mut session, _) = publishing();
    let mut input = msg(6, 0xffff_ff00, VIDEO, 1, &[0x27, 1, 0, 0, 0]);
    input.extend(msg(6, 0x0000_0100, VIDEO, 1, &[0x27, 1, 0, 0, 0]));
    input.extend(msg(6, 0x0000_00f0, VIDEO, 1, &[0x27, 1, 0, 0, 0]));
    let dts: Vec<u64> = media(&feed(&mut session, &input))
        .iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(dts, [0xffff_ff00, 0x1_0000_0100, 0x1_0000_00f0]);
}

#[test]
fn chunk_size_change_mid_session() {
    let (mut session, _) = publishing();
    let mut input = msg(2, 0, SET_CHUNK_SIZE, 0, &4096u32.to_be_bytes());
    let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let mut big = BytesMut::new();
    write_message(&mut big, 4096, 6, 33, VIDEO, 1, &payload);
    input.extend_from_slice(&big);
    let m = media(&feed(&mut session, &input));
    assert_eq!(m, [(MediaKind::Video, 33, payload)]);

    let mut events = Vec::new();
    assert_eq!(
        session.handle_input(&msg(2, 0, SET_CHUNK_SIZE, 0, &[0, 0, 0, 0]), &mut events),
        Err(RtmpError::InvalidChunkSize(0))
    );
}

#[test]
fn aggregate_messages_are_split() {
    let (mut session, _) = publishing();
    let mut agg = Vec::new();
    for (ty, ts, body) in [
        (VIDEO, 1000u32, &[0x17u8, 1, 0, 0, 0][..]),
        (AUDIO, 1023, &[0xaf, 1]),
    ] {
        agg.push(ty);
        agg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.push(0);
        agg.extend_from_slice(&[0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(body.len() as u32 + 11).to_be_bytes());
    }
    let m = media(&feed(&mut session, &msg(6, 500, AGGREGATE, 1, &agg)));
    assert_eq!(
        m,
        [
            (MediaKind::Video, 500, vec![0x17, 1, 0, 0, 0]),
            (MediaKind::Audio, 523, vec![0xaf, 1])
        ]
    );
    let mut events = Vec::new();
    assert!(
        session
            .handle_input(&msg(6, 0, AGGREGATE, 1, &agg[..14]), &mut events)
            .is_err()
    );
}

#[test]
fn unknown_commands_get_error_or_nothing() {
    let (mut session, mut peer) = connected();
    feed(
        &mut session,
        &command(0, &[s("_checkbw"), n(9.0), Amf0Value::Null]),
    );
    let out = peer.read(&mut session);
    let v = values(&out[0]);
    assert_eq!((&v[0], &v[1]), (&s("_error"), &n(9.0)));
    feed(
        &mut session,
        &command(0, &[s("whatever"), n(0.0), Amf0Value::Null]),
    );
    feed(&mut session, &command(0, &[n(1.0)]));
    assert!(peer.read(&mut session).is_empty());
}

#[test]
fn protocol_violations_are_errors() {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut input = handshake();
    input.extend(command(0, &[s("createStream"), n(2.0), Amf0Value::Null]));
    let mut events = Vec::new();
    assert_eq!(
        session.handle_input(&input, &mut events),
        Err(RtmpError::Protocol("command before connect"))
    );

    let (mut session, _) = connected();
    assert!(session.handle_input(&connect_cmd(), &mut events).is_err());

    let (mut session, _) = publishing();
    assert!(
        session
            .handle_input(&publish_cmd("again"), &mut events)
            .is_err()
    );
}

#[test]
fn zero_copy_from_driver_buffer() {
    let (mut session, _) = publishing();
    let mut buf = BytesMut::with_capacity(4096);
    let frame = msg(6, 7, VIDEO, 1, &[0x17, 1, 0, 0, 0, 42]);
    buf.extend_from_slice(&frame);
    buf.extend_from_slice(&frame[..5]); // a partial chunk stays behind
    let base = buf.as_ptr() as usize;
    let len = buf.len();
    let mut events = Vec::new();
    session
        .handle_input_buf(&mut buf, len, &mut events)
        .unwrap();
    let [Event::Media(f)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(f.payload.as_ptr() as usize, base + 12);
    assert_eq!(&buf[..], &frame[..5]);
}

fn valid_publish_stream() -> Vec<u8> {
    let mut input = handshake();
    input.extend(connect_cmd());
    input.extend(command(0, &[s("createStream"), n(2.0), Amf0Value::Null]));
    input.extend(publish_cmd("x"));
    input
}

proptest! {
    #[test]
    fn garbage_after_handshake_never_panics(b in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut session = ServerSession::new(SessionConfig::default());
        let mut events = Vec::new();
        let mut input = handshake();
        input.extend_from_slice(&b);
        let _ = session.handle_input(&input, &mut events);
        let _ = session.take_output();
    }

    #[test]
    fn garbage_while_publishing_never_panics(
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8)
    ) {
        let (mut session, _) = publishing();
        let mut events = Vec::new();
        for p in parts {
            if session.handle_input(&p, &mut events).is_err() {
                prop_assert_eq!(session.handle_input(&[], &mut events), Err(RtmpError::Failed));
                break;
            }
        }
    }

    #[test]
    fn any_split_of_a_valid_stream_gives_the_same_events(cuts in prop::collection::vec(0usize..4000, 0..6)) {
        let input = valid_publish_stream();
        let mut whole = ServerSession::new(SessionConfig::default());
        let expected = feed(&mut whole, &input);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % input.len()).collect();
        cuts.sort_unstable();
        let mut session = ServerSession::new(SessionConfig::default());
        let mut events = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            session.handle_input(&input[start..c], &mut events).unwrap();
            start = c;
        }
        prop_assert_eq!(events, expected);
        prop_assert_eq!(session.take_output(), whole.take_output());
    }
}

fn connect_result_info(four_cc: Option<Vec<Amf0Value>>) -> Amf0Value {
    let mut props = vec![
        ("app".into(), s("live")),
        ("tcUrl".into(), s("rtmp://127.0.0.1/live")),
    ];
    if let Some(list) = four_cc {
        props.push(("fourCcList".into(), Amf0Value::StrictArray(list)));
    }
    let mut input = handshake();
    input.extend(command(
        0,
        &[s("connect"), n(1.0), Amf0Value::Object(props)],
    ));
    let mut session = ServerSession::new(SessionConfig::default());
    feed(&mut session, &input);
    let out = session.take_output().unwrap();
    let mut rest = BytesMut::from(&out[1 + 2 * HANDSHAKE_SIZE..]);
    let mut peer = Peer::new();
    let mut result = None;
    while let Some(m) = peer.decoder.decode(&mut rest).unwrap() {
        if m.type_id == SET_CHUNK_SIZE {
            peer.decoder.set_chunk_size(60_000);
        }
        if m.type_id == COMMAND_AMF0 {
            result = Some(values(&m).swap_remove(3));
        }
    }
    result.unwrap()
}

#[test]
fn enhanced_rtmp_four_cc_list_is_negotiated() {
    let info = connect_result_info(Some(vec![s("av01"), s("vp09"), s("hvc1"), s("avc1")]));
    assert_eq!(
        info.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            s("avc1"),
            s("hvc1"),
            s("av01")
        ]))
    );
    let info = connect_result_info(Some(vec![s("vp09"), s("hvc1")]));
    assert_eq!(
        info.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![s("hvc1")]))
    );
    let info = connect_result_info(Some(vec![s("*")]));
    assert_eq!(
        info.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            s("avc1"),
            s("hvc1"),
            s("av01")
        ]))
    );
    // Offered but nothing in common: an empty list, still present.
    let info = connect_result_info(Some(vec![s("vp09")]));
    assert_eq!(
        info.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![]))
    );
    // Legacy clients get no fourCcList at all.
    let info = connect_result_info(None);
    assert_eq!(info.get("fourCcList"), None);
    assert_eq!(info.get("code"), Some(&s("NetConnection.Connect.Success")));
}
