//! The synthetic seed (`livetape bench seed-catalog`) and the listing queries at scale:
//! every query shape Live_Tape_GetFilelist and /v1/recordings make is index-driven, and
//! the trigger-kept totals agree with a real count.

use livetape_catalog::{Catalog, Recording, RecordingQuery, SeedSpec, SortOrder, seed_stream_name};

use crate::common::TestDb;

// The plan checks are SQLite's; the seed and the trigger-kept totals are on both.
conformance!(
    seeded_rows_look_like_the_servers,
    totals_from_counters_match_counts_after_deletes,
    counters_follow_inserts_and_deletes,
);

const END_MS: i64 = 1_780_000_000_000;
const DAY_MS: i64 = 86_400_000;

fn spec(files: u64) -> SeedSpec {
    SeedSpec {
        files,
        streams: 50,
        days: 90,
        end_ms: END_MS,
        appid: 1_250_000_000,
        public_url: "http://vod.example".into(),
        domain: "push.example.com".into(),
    }
}

/// A total through `COUNT(*)` on `recordings` (a window wider than any data forces it).
/// A listing filtered by domain, app and format (the dimensions the counters keep).
fn filter(app: Option<&str>, appname: Option<&str>, format: Option<&str>) -> RecordingQuery {
    RecordingQuery {
        app: app.map(Into::into),
        appname: appname.map(Into::into),
        format: format.map(Into::into),
        ..Default::default()
    }
}

/// The maintained counts agree with a real `COUNT(*)` for every filter.
async fn counts_agree(cat: &Catalog, filters: &[RecordingQuery]) {
    for q in filters {
        assert_eq!(
            cat.count_recordings(q).await.unwrap(),
            counted(cat, q).await,
            "{q:?}"
        );
    }
}

async fn counted(cat: &Catalog, q: &RecordingQuery) -> u64 {
    let q = RecordingQuery {
        from_ms: Some(i64::MIN),
        ..q.clone()
    };
    cat.count_recordings(&q).await.unwrap()
}

async fn seeded_rows_look_like_the_servers(db: &TestDb) {
    let cat = db.open().await;
    let r = cat.seed_synthetic_recordings(&spec(3000)).await.unwrap();
    assert_eq!((r.inserted, r.total_rows), (3000, 3000));
    // Appending keeps the earlier rows.
    let r = cat.seed_synthetic_recordings(&spec(500)).await.unwrap();
    assert_eq!(r.total_rows, 3500);

    let (total, rows) = cat
        .list_recordings(&RecordingQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((total, rows.len()), (3500, 1000));
    for rec in &rows {
        let (appid, hex) = rec.file_id.split_once('_').unwrap();
        assert_eq!(appid, "1250000000");
        assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{rec:?}"
        );
        assert!(
            rec.start_ms >= END_MS - 90 * DAY_MS && rec.start_ms <= END_MS,
            "{rec:?}"
        );
        assert!(rec.end_ms > rec.start_ms && rec.duration_ms > 0, "{rec:?}");
        assert!(rec.size_bytes > 0);
        let tail = if rec.format == "hls" {
            "playlist.m3u8".to_owned()
        } else {
            format!("f0.{}", rec.format)
        };
        assert_eq!(
            rec.video_url,
            format!("http://vod.example/vod/{}/{tail}", rec.file_id)
        );
        assert!(
            rec.path
                .starts_with(&format!("records/{}/{}/", rec.appname, rec.stream_id)),
            "{rec:?}"
        );
        assert!(
            rec.path
                .ends_with(&format!("_{}.{}", &hex[..8], rec.format)),
            "{rec:?}"
        );
        assert!(["live", "edu", "shop"].contains(&rec.appname.as_str()));
        assert!(["mp4", "flv", "hls"].contains(&rec.format.as_str()));
        assert_eq!(rec.expires_at_ms, None, "retention must not eat the seed");
    }
    // Skewed: stream 0 is the busiest.
    let busy = counted(
        &cat,
        &RecordingQuery {
            stream_id: Some(seed_stream_name(0)),
            ..Default::default()
        },
    )
    .await;
    assert!(busy > 3500 / 50, "stream 0 has {busy} files");
    cat.close().await;
}

async fn totals_from_counters_match_counts_after_deletes(db: &TestDb) {
    let cat = db.open().await;
    cat.seed_synthetic_recordings(&spec(2000)).await.unwrap();
    let (_, some) = cat
        .list_recordings(&RecordingQuery {
            limit: 30,
            ..Default::default()
        })
        .await
        .unwrap();
    for (i, r) in some.iter().enumerate() {
        if i % 2 == 0 {
            cat.delete_recording(&r.file_id).await.unwrap().unwrap();
        } else {
            cat.tombstone_recording(&r.file_id, 1)
                .await
                .unwrap()
                .unwrap();
        }
    }
    let filters = [
        filter(None, None, None),
        filter(None, Some("edu"), None),
        filter(None, None, Some("hls")),
        filter(Some("push.example.com"), Some("live"), Some("mp4")),
        filter(Some("elsewhere"), None, None),
    ];
    counts_agree(&cat, &filters).await;
    assert_eq!(cat.count_recordings(&filters[0]).await.unwrap(), 1970);
    cat.close().await;
}

/// Every query shape of the two listing APIs: counts are index-only or read the
/// counters, pages walk an index in order (no full scan, no sort of the matches).
#[tokio::test]
async fn listing_queries_are_index_driven() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&dir.path().join("c.db")).await.unwrap();
    cat.seed_synthetic_recordings(&spec(500)).await.unwrap();
    let s = || Some(seed_stream_name(3));
    let window = (Some(END_MS - DAY_MS), Some(END_MS));
    let mut shapes = Vec::new();
    for order in [SortOrder::Asc, SortOrder::Desc] {
        for (from_ms, to_ms) in [(None, None), window] {
            for (stream_id, appname, format) in [
                (s(), None, None),
                (None, None, None),
                (None, Some("live".into()), None),
                (None, None, Some("flv".into())),
                (s(), Some("live".into()), Some("flv".into())),
            ] {
                shapes.push(RecordingQuery {
                    stream_id,
                    appname,
                    format,
                    from_ms,
                    to_ms,
                    order,
                    offset: 40,
                    limit: 20,
                    ..Default::default()
                });
            }
        }
    }
    for q in &shapes {
        let (count, page) = cat.explain_list_recordings(q).await.unwrap();
        let scans = |lines: &[String]| {
            lines
                .iter()
                .any(|l| l == "SCAN recordings" || l.contains("TEMP B-TREE"))
        };
        assert!(!scans(&page), "{q:?}: page plan {page:?}");
        assert!(
            page.iter().any(|l| l.contains("recordings USING INDEX")),
            "{q:?}: page plan {page:?}"
        );
        assert!(
            count == ["SCAN recording_counts"]
                || count
                    .iter()
                    .any(|l| l.starts_with("SEARCH recordings USING") && l.contains("INDEX")),
            "{q:?}: count plan {count:?}"
        );
        assert!(!scans(&count), "{q:?}: count plan {count:?}");
    }
    cat.close().await;
}

fn rec(i: u32) -> Recording {
    let (app, appname, format) = [
        ("a.example", "live", "flv"),
        ("a.example", "live", "mp4"),
        ("a.example", "edu", "mp4"),
        ("b.example", "live", "hls"),
    ][i as usize % 4];
    Recording {
        file_id: format!("f{i:04}"),
        sequence: "1".into(),
        app: app.into(),
        appname: appname.into(),
        stream_id: format!("s{}", i % 3),
        format: format.into(),
        start_ms: i64::from(i) * 1_000,
        end_ms: i64::from(i) * 1_000 + 900,
        duration_ms: 900,
        size_bytes: 1,
        path: format!("p/{i}"),
        video_url: String::new(),
        stream_param: String::new(),
        video_codec: "h264".into(),
        width: 1,
        height: 1,
        media_start_ms: 0,
        created_at_ms: 0,
        expires_at_ms: None,
    }
}

/// The unfiltered totals come from `recording_counts`, kept by triggers (SQLite triggers,
/// PL/pgSQL on PostgreSQL); they must agree with a real `COUNT(*)` after inserts and both
/// kinds of delete.
async fn counters_follow_inserts_and_deletes(db: &TestDb) {
    let cat = db.open().await;
    for i in 0..40 {
        cat.insert_recording(&rec(i), vec![]).await.unwrap();
    }
    for i in (0..40).step_by(3) {
        let id = format!("f{i:04}");
        if i % 2 == 0 {
            cat.delete_recording(&id).await.unwrap().unwrap();
        } else {
            cat.tombstone_recording(&id, 1).await.unwrap().unwrap();
        }
    }
    let filters = [
        filter(None, None, None),
        filter(None, Some("live"), None),
        filter(None, None, Some("mp4")),
        filter(Some("b.example"), Some("live"), Some("hls")),
        filter(Some("nowhere"), None, None),
    ];
    counts_agree(&cat, &filters).await;
    assert_eq!(cat.count_recordings(&filters[0]).await.unwrap(), 40 - 14);
    let (total, page) = cat
        .list_recordings(&RecordingQuery {
            limit: 5,
            order: SortOrder::Desc,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 26);
    let ids: Vec<&str> = page.iter().map(|r| r.file_id.as_str()).collect();
    assert_eq!(ids, ["f0038", "f0037", "f0035", "f0034", "f0032"]);
    cat.close().await;
}
