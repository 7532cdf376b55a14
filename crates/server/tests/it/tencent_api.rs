//! Tencent Cloud API 3.0 through Tencent's official Python SDK (`tencentcloud-sdk-python-live`
//! and `-vod`, pinned in scripts/requirements-test.txt): every call below is the SDK's request
//! model, signed and sent by the SDK's client, its answer parsed into the SDK's response model
//! (`tests/tencent_api/sdk.py`), against a real livetape with real ffmpeg pushes.

use crate::common::*;
use serde_json::{Value, json};
use std::path::PathBuf;

const SECRET_ID: &str = "AKIDlivetapetest0000000000000000000";
const SECRET_KEY: &str = "livetape-test-secret-key-0000001";
const SECOND_ID: &str = "AKIDsecondbackend";
const SECOND_KEY: &str = "second-key";

fn keys() -> String {
    format!(
        "[tencent_api]\nsecret_id = \"{SECRET_ID}\"\nsecret_key = \"{SECRET_KEY}\"\n\
         [[tencent_api.keys]]\nsecret_id = \"{SECOND_ID}\"\nsecret_key = \"{SECOND_KEY}\"\n"
    )
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tencent_api/sdk.py")
}

/// What the SDK returned: the response model as JSON, or Tencent's error code and message.
type Sdk = Result<Value, (String, String)>;

/// One call through the SDK, as `id`/`key`, with extra `sdk.py` flags (`--get`, `--skew N`).
async fn call_as(
    s: &TestServer,
    id: &str,
    key: &str,
    service: &str,
    action: &str,
    params: Value,
    flags: &[&str],
) -> Sdk {
    let out = tokio::process::Command::new(venv_python())
        .arg(script())
        .arg(s.running.http_addr.to_string())
        .args([id, key, service, action, &params.to_string()])
        .args(flags)
        .output()
        .await
        .expect("run the SDK script");
    assert!(
        out.status.success(),
        "sdk.py {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sdk.py {action} printed {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    match v.get("ok") {
        Some(ok) => {
            assert!(
                ok["RequestId"].as_str().is_some_and(|r| r.len() == 36),
                "{v}"
            );
            Ok(ok.clone())
        }
        None => Err((
            v["error"]["code"].as_str().unwrap().to_owned(),
            v["error"]["message"].as_str().unwrap().to_owned(),
        )),
    }
}

/// The stream the push test publishes, as the stream actions name it.
fn sdk1() -> Value {
    json!({"AppName": "live", "DomainName": "push.example.com", "StreamName": "sdk1"})
}

async fn live(s: &TestServer, action: &str, params: Value) -> Sdk {
    call_as(s, SECRET_ID, SECRET_KEY, "live", action, params, &[]).await
}

async fn vod(s: &TestServer, action: &str, params: Value) -> Sdk {
    call_as(s, SECRET_ID, SECRET_KEY, "vod", action, params, &[]).await
}

/// The error code of a call that must fail (its message must name something).
fn code(r: Sdk) -> String {
    let (code, message) = r.expect_err("the call must fail");
    assert!(!message.is_empty());
    code
}

/// SDK creates record template + rule + callback template + rule → ffmpeg push → the stream
/// is online → DropLiveStream cuts it → event 100 arrives signed → SearchMedia finds the file,
/// its MediaUrl plays → DeleteMedia removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_end_to_end_template_rule_push_drop_search_delete() {
    // Nothing records and nothing is announced until the SDK says so.
    let scenario = Scenario::new()
        .server("domain = \"push.example.com\"")
        .config(&format!(
            "[[record_rule]]\napp = \"nothing-records-here\"\ntemplate = \"default\"\n\
             [callbacks]\nallow_targets = [\"127.0.0.0/8\"]\n{}",
            keys()
        ))
        .without_callbacks();
    let mut s = TestServer::from_scenario(scenario).await;

    let tpl = live(
        &s,
        "CreateLiveRecordTemplate",
        json!({
            "TemplateName": "sdk_hd",
            "FlvParam": {"Enable": 1, "RecordInterval": 1800, "StorageTime": 0},
            "Mp4Param": {"Enable": 1, "RecordInterval": 1800, "StorageTime": 0},
        }),
    )
    .await
    .unwrap();
    let template_id = tpl["TemplateId"].as_i64().unwrap();
    assert!(template_id > 0);
    live(&s, "CreateLiveRecordRule", json!({
        "DomainName": "push.example.com", "AppName": "live", "StreamName": "", "TemplateId": template_id,
    }))
    .await
    .unwrap();
    let cb = live(
        &s,
        "CreateLiveCallbackTemplate",
        json!({
            "TemplateName": "sdk_cb",
            "StreamBeginNotifyUrl": format!("{}/begin", s.receiver.url),
            "StreamEndNotifyUrl": format!("{}/end", s.receiver.url),
            "RecordNotifyUrl": format!("{}/record", s.receiver.url),
            "CallbackKey": CALLBACK_KEY,
        }),
    )
    .await
    .unwrap();
    live(
        &s,
        "CreateLiveCallbackRule",
        json!({
            "DomainName": "push.example.com", "AppName": "live", "TemplateId": cb["TemplateId"],
        }),
    )
    .await
    .unwrap();

    // A real-time push, cut through the API while it runs.
    let (rtmp, clip) = (s.rtmp(), fixture(CLIP_60S));
    let pusher =
        tokio::spawn(async move { publish(rtmp, "live", "sdk1", &clip, Pace::Rate(1)).await });
    let begin = s.receiver.next_of(1).await.body;
    assert_signed(&begin);
    assert_eq!(begin["app"], "push.example.com");
    let online = live(
        &s,
        "DescribeLiveStreamOnlineList",
        json!({"DomainName": "push.example.com", "AppName": "live"}),
    )
    .await
    .unwrap();
    assert_eq!(online["TotalNum"], 1, "{online}");
    let info = &online["OnlineInfo"][0];
    assert_eq!(
        (info["StreamName"].as_str(), info["AppName"].as_str()),
        (Some("sdk1"), Some("live"))
    );
    assert_eq!(info["DomainName"], "push.example.com");
    assert!(
        info["PublishTimeList"][0]["PublishTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let state = live(&s, "DescribeLiveStreamState", sdk1()).await.unwrap();
    assert_eq!(state["StreamState"], "active");
    // Content, not synchronisation: a real-time push records as many seconds as it runs.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    live(&s, "DropLiveStream", sdk1()).await.unwrap();
    let end = s.receiver.next_of(0).await.body;
    assert_signed(&end);
    assert_eq!(end["sequence"], begin["sequence"]);
    assert_eq!(end["errcode"], 24, "{end}");
    let _ = pusher.await;

    let mut files = vec![
        s.receiver.next_of(100).await.body,
        s.receiver.next_of(100).await.body,
    ];
    files.sort_by_key(|f| f["file_format"].as_str().unwrap().to_owned());
    for f in &files {
        assert_signed(f);
        assert_eq!(f["record_temp_id"], template_id.to_string(), "{f}");
        assert_eq!(f["video_id"], f["file_id"]);
    }
    let state = live(&s, "DescribeLiveStreamState", sdk1()).await.unwrap();
    assert_eq!(state["StreamState"], "inactive");

    let found = vod(
        &s,
        "SearchMedia",
        json!({"StreamIds": ["sdk1"], "Sort": {"Field": "CreateTime", "Order": "Asc"}}),
    )
    .await
    .unwrap();
    assert_eq!(found["TotalCount"], 2, "{found}");
    let mp4 = files.iter().find(|f| f["file_format"] == "mp4").unwrap();
    let item = found["MediaInfoSet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["FileId"] == mp4["file_id"])
        .expect("the mp4 is found")
        .clone();
    let basic = &item["BasicInfo"];
    assert_eq!(basic["MediaUrl"], mp4["video_url"]);
    assert_eq!(basic["Type"], "mp4");
    assert_eq!(basic["SourceInfo"]["SourceType"], "Record");
    assert_eq!(basic["SourceInfo"]["LiveRecordInfo"]["StreamId"], "sdk1");
    assert_eq!(
        basic["SourceInfo"]["LiveRecordInfo"]["Domain"],
        "push.example.com"
    );
    assert_eq!(basic["ExpireTime"], "9999-12-31T23:59:59Z");
    let meta = &item["MetaData"];
    assert_eq!(meta["Size"], mp4["file_size"]);
    assert_eq!(
        (meta["Width"].as_u64(), meta["Height"].as_u64()),
        (Some(1280), Some(720)),
        "CLIP_60S is 720p"
    );
    assert!(meta["Duration"].as_f64().unwrap() >= 2.0, "{meta}");
    assert_eq!(meta["VideoStreamSet"][0]["Codec"], "h264");

    // The MediaUrl plays: the same bytes as the catalogued file, decoding clean.
    let got = s.download(mp4).await;
    assert_eq!(decode_errors(&got), "");
    let fid = mp4["file_id"].as_str().unwrap();
    let on_disk = s.data_path(basic["StoragePath"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&on_disk).unwrap().len(),
        mp4["file_size"].as_u64().unwrap()
    );
    let (v, a) = probe_counts(&got);
    assert!(v > 0 && a > 0, "{v} video, {a} audio packets");

    // DescribeMediaInfos with a filter, and an id that does not exist.
    let d = vod(
        &s,
        "DescribeMediaInfos",
        json!({"FileIds": [mp4["file_id"], "nope"], "Filters": ["metaData"]}),
    )
    .await
    .unwrap();
    assert_eq!(d["NotExistFileIdSet"], json!(["nope"]));
    assert!(
        d["MediaInfoSet"][0]["BasicInfo"].is_null()
            && d["MediaInfoSet"][0]["MetaData"]["Size"] == mp4["file_size"]
    );

    // DeleteMedia: catalogue row, file and playback go together.
    let local = s.local_url(mp4["video_url"].as_str().unwrap());
    vod(&s, "DeleteMedia", json!({"FileId": fid}))
        .await
        .unwrap();
    assert_eq!(reqwest::get(&local).await.unwrap().status(), 404);
    assert!(!on_disk.exists(), "{} is gone", on_disk.display());
    let left = vod(&s, "SearchMedia", json!({"StreamIds": ["sdk1"]}))
        .await
        .unwrap();
    assert_eq!(left["TotalCount"], 1);
    assert_eq!(
        code(vod(&s, "DeleteMedia", json!({"FileId": fid})).await),
        "ResourceNotFound.FileNotExist"
    );
    let recs = s.api_json("/v1/recordings?stream_id=sdk1", "").await;
    assert_eq!(recs["total"], 1, "{recs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_keys_and_actions_are_refused_with_tencents_codes() {
    let s = TestServer::start(&keys()).await;
    let p = json!({"AppName": "live", "DomainName": "d", "StreamName": "x"});
    let ok = live(&s, "DescribeLiveStreamState", p.clone())
        .await
        .unwrap();
    assert_eq!(ok["StreamState"], "inactive");
    // A second issued pair works too; a GET (query parameters, signed) as well.
    call_as(
        &s,
        SECOND_ID,
        SECOND_KEY,
        "live",
        "DescribeLiveStreamState",
        p.clone(),
        &[],
    )
    .await
    .unwrap();
    let got = call_as(
        &s,
        SECRET_ID,
        SECRET_KEY,
        "live",
        "DescribeLiveStreamState",
        p.clone(),
        &["--get"],
    )
    .await
    .unwrap();
    assert_eq!(got["StreamState"], "inactive");
    for (id, key, flags, want) in [
        (
            SECRET_ID,
            "wrong-key",
            &[][..],
            "AuthFailure.SignatureFailure",
        ),
        (
            SECOND_ID,
            SECRET_KEY,
            &[][..],
            "AuthFailure.SignatureFailure",
        ),
        (
            "AKIDnobody",
            SECRET_KEY,
            &[][..],
            "AuthFailure.SecretIdNotFound",
        ),
        (
            SECRET_ID,
            SECRET_KEY,
            &["--skew", "400"][..],
            "AuthFailure.SignatureExpire",
        ),
        (
            SECRET_ID,
            SECRET_KEY,
            &["--skew", "-400"][..],
            "AuthFailure.SignatureExpire",
        ),
    ] {
        let r = call_as(
            &s,
            id,
            key,
            "live",
            "DescribeLiveStreamState",
            p.clone(),
            flags,
        )
        .await;
        assert_eq!(code(r), want, "{id} {flags:?}");
    }
    // Within the window is fine.
    call_as(
        &s,
        SECRET_ID,
        SECRET_KEY,
        "live",
        "DescribeLiveStreamState",
        p.clone(),
        &["--skew", "200"],
    )
    .await
    .unwrap();

    assert_eq!(
        code(live(&s, "DescribeLiveStreamState", json!({"AppName": "live"})).await),
        "MissingParameter"
    );
    assert_eq!(
        code(live(&s, "DescribeRecordTask", json!({})).await),
        "UnsupportedOperation"
    );
    assert_eq!(
        code(live(&s, "DescribeLiveDomains", json!({})).await),
        "InvalidAction"
    );
    assert_eq!(
        code(live(&s, "DropLiveStream", p.clone()).await),
        "ResourceNotFound.StreamNotAlive"
    );
    assert_eq!(
        code(
            live(
                &s,
                "DescribeLiveStreamOnlineList",
                json!({"PageSize": 1000})
            )
            .await
        ),
        "InvalidParameterValue"
    );

    // The raw wire: a bad Authorization header, an unsigned request; errors are HTTP 200
    // with Tencent's envelope (the SDKs take any other status for a network failure).
    let http = reqwest::Client::new();
    for auth in [None, Some("TC3-HMAC-SHA256 Credential=x")] {
        let mut req = http
            .post(s.http("/"))
            .header("Content-Type", "application/json")
            .header("X-TC-Action", "DescribeLiveStreamState")
            .header("X-TC-Version", "2018-08-01")
            .header("X-TC-Timestamp", "1")
            .body("{}");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["Response"]["Error"]["Code"], "AuthFailure.InvalidAuthorization",
            "{v}"
        );
        assert_eq!(v["Response"]["RequestId"].as_str().unwrap().len(), 36);
    }
    // A body over the bound is refused before anything else is read.
    let big = vec![b' '; API_BODY_LIMIT + 1];
    let r = http
        .post(s.http("/"))
        .header("X-TC-Action", "X")
        .body(big)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Response"]["Error"]["Code"], "InvalidParameter", "{v}");
    // GET / without an action is still the console.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.http("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console");
}

/// `http::tencent_api::MAX_BODY_BYTES`.
const API_BODY_LIMIT: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_section_the_api_is_off() {
    let s = TestServer::start("").await;
    let r = live(
        &s,
        "DescribeLiveStreamState",
        json!({"AppName": "a", "DomainName": "d", "StreamName": "s"}),
    )
    .await;
    assert_eq!(code(r), "AuthFailure.SecretIdNotFound");
}

/// Templates and rules made through the SDK are the `/v1` ones (one implementation), with
/// Tencent's errors where a backend branches on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_rules_through_the_sdk_are_the_v1_ones() {
    let s = TestServer::start(&keys()).await;
    assert_eq!(
        code(
            live(
                &s,
                "CreateLiveRecordTemplate",
                json!({"FlvParam": {"Enable": 1}})
            )
            .await
        ),
        "MissingParameter"
    );
    let mismatched = json!({"TemplateName": "bad", "FlvParam": {"Enable": 1, "RecordInterval": 600}, "Mp4Param": {"Enable": 1, "RecordInterval": 900}});
    assert_eq!(
        code(live(&s, "CreateLiveRecordTemplate", mismatched).await),
        "InvalidParameterValue"
    );
    let created = live(
        &s,
        "CreateLiveRecordTemplate",
        json!({
            "TemplateName": "hls_only",
            "HlsParam": {"Enable": 1, "StorageTime": 86400 * 7},
            "HlsSpecialParam": {"FlowContinueDuration": 60},
        }),
    )
    .await
    .unwrap();
    let id = created["TemplateId"].as_i64().unwrap();
    assert_eq!(
        code(
            live(
                &s,
                "CreateLiveRecordTemplate",
                json!({"TemplateName": "hls_only", "HlsParam": {"Enable": 1}})
            )
            .await
        ),
        "FailedOperation"
    );

    let one = live(&s, "DescribeLiveRecordTemplate", json!({"TemplateId": id}))
        .await
        .unwrap();
    let t = &one["Template"];
    assert_eq!(
        (t["TemplateId"].as_i64(), t["TemplateName"].as_str()),
        (Some(id), Some("hls_only"))
    );
    assert_eq!(t["HlsParam"]["Enable"], 1);
    assert_eq!(t["FlvParam"]["Enable"], 0);
    assert_eq!(t["HlsParam"]["StorageTime"], 86400 * 7);
    assert_eq!(t["HlsSpecialParam"]["FlowContinueDuration"], 60);
    // The same template on /v1, with the same number.
    let v1 = s.api_json("/v1/record-templates/hls_only", "").await;
    assert_eq!(
        (
            v1["id"].as_i64(),
            v1["formats"].clone(),
            v1["storage_days"].as_u64(),
            v1["resume_s"].as_u64()
        ),
        (Some(id), json!(["hls"]), Some(7), Some(60))
    );

    live(
        &s,
        "ModifyLiveRecordTemplate",
        json!({"TemplateId": id, "Mp4Param": {"Enable": 1, "RecordInterval": 900}}),
    )
    .await
    .unwrap();
    let v1 = s.api_json("/v1/record-templates/hls_only", "").await;
    assert_eq!(
        (v1["formats"].clone(), v1["interval_s"].as_u64()),
        (json!(["mp4", "hls"]), Some(900))
    );
    let all = live(&s, "DescribeLiveRecordTemplates", json!({}))
        .await
        .unwrap();
    assert!(
        all["Templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["TemplateId"] == id && t["Mp4Param"]["Enable"] == 1)
    );
    assert_eq!(
        code(
            live(
                &s,
                "ModifyLiveRecordTemplate",
                json!({"TemplateId": id, "TemplateName": "renamed"})
            )
            .await
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(
            live(
                &s,
                "DescribeLiveRecordTemplate",
                json!({"TemplateId": 999_999})
            )
            .await
        ),
        "ResourceNotFound"
    );

    // Rules bind by number; a bound template cannot be deleted.
    live(&s, "CreateLiveRecordRule", json!({"DomainName": "d.example", "AppName": "live", "StreamName": "vip", "TemplateId": id}))
        .await
        .unwrap();
    assert_eq!(code(live(&s, "CreateLiveRecordRule", json!({"DomainName": "d.example", "AppName": "live", "StreamName": "vip", "TemplateId": id})).await), "FailedOperation");
    assert_eq!(
        code(
            live(
                &s,
                "CreateLiveRecordRule",
                json!({"DomainName": "d.example", "TemplateId": 999_999})
            )
            .await
        ),
        "ResourceNotFound"
    );
    let rules = live(&s, "DescribeLiveRecordRules", json!({}))
        .await
        .unwrap();
    let r = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["TemplateId"] == id)
        .expect("the rule")
        .clone();
    assert_eq!(
        (
            r["DomainName"].as_str(),
            r["AppName"].as_str(),
            r["StreamName"].as_str()
        ),
        (Some("d.example"), Some("live"), Some("vip"))
    );
    let v1 = s.api_json("/v1/record-rules", "").await;
    assert!(
        v1["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["template"] == "hls_only" && r["domain"] == "d.example"),
        "{v1}"
    );
    assert_eq!(
        code(live(&s, "DeleteLiveRecordTemplate", json!({"TemplateId": id})).await),
        "FailedOperation"
    );
    live(
        &s,
        "DeleteLiveRecordRule",
        json!({"DomainName": "d.example", "AppName": "live", "StreamName": "vip"}),
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            live(
                &s,
                "DeleteLiveRecordRule",
                json!({"DomainName": "d.example", "AppName": "live", "StreamName": "vip"})
            )
            .await
        ),
        "ResourceNotFound"
    );
    live(&s, "DeleteLiveRecordTemplate", json!({"TemplateId": id}))
        .await
        .unwrap();
    assert_eq!(
        reqwest::get(s.http("/v1/record-templates/hls_only"))
            .await
            .unwrap()
            .status(),
        404
    );

    // Callback templates: the key is write-only, URLs are checked as on /v1.
    let cb = live(&s, "CreateLiveCallbackTemplate", json!({
        "TemplateName": "hooks", "RecordNotifyUrl": "http://hooks.example/rec", "CallbackKey": "secret-k",
    }))
    .await
    .unwrap();
    let cid = cb["TemplateId"].as_i64().unwrap();
    // Callback targets set over the API are checked as on /v1 (no loopback unless allowed).
    let loopback = json!({"TemplateName": "lo", "RecordNotifyUrl": "http://127.0.0.1:9/rec"});
    assert_eq!(
        code(live(&s, "CreateLiveCallbackTemplate", loopback).await),
        "InvalidParameterValue"
    );
    let got = live(
        &s,
        "DescribeLiveCallbackTemplate",
        json!({"TemplateId": cid}),
    )
    .await
    .unwrap();
    assert_eq!(
        got["Template"]["RecordNotifyUrl"],
        "http://hooks.example/rec"
    );
    assert_eq!(got["Template"]["CallbackKey"], "***");
    assert_eq!(
        code(
            live(
                &s,
                "CreateLiveCallbackTemplate",
                json!({"TemplateName": "x", "RecordNotifyUrl": "ftp://h/"})
            )
            .await
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(
            live(
                &s,
                "CreateLiveCallbackTemplate",
                json!({"TemplateName": "y"})
            )
            .await
        ),
        "InvalidParameterValue"
    );
    live(
        &s,
        "ModifyLiveCallbackTemplate",
        json!({"TemplateId": cid, "StreamEndNotifyUrl": "http://hooks.example/end"}),
    )
    .await
    .unwrap();
    let v1 = s.api_json("/v1/callback-templates/hooks", "").await;
    assert_eq!(
        (v1["stream_end_url"].as_str(), v1["key"].as_str()),
        (Some("http://hooks.example/end"), Some("***"))
    );
    live(
        &s,
        "CreateLiveCallbackRule",
        json!({"DomainName": "d.example", "AppName": "live", "TemplateId": cid}),
    )
    .await
    .unwrap();
    let rules = live(&s, "DescribeLiveCallbackRules", json!({}))
        .await
        .unwrap();
    assert!(
        rules["Rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["TemplateId"] == cid && r["AppName"] == "live")
    );
    let all = live(&s, "DescribeLiveCallbackTemplates", json!({}))
        .await
        .unwrap();
    assert!(
        all["Templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["TemplateId"] == cid)
    );
    live(
        &s,
        "DeleteLiveCallbackRule",
        json!({"DomainName": "d.example", "AppName": "live"}),
    )
    .await
    .unwrap();
    live(&s, "DeleteLiveCallbackTemplate", json!({"TemplateId": cid}))
        .await
        .unwrap();
    assert_eq!(
        code(
            live(
                &s,
                "DescribeLiveCallbackTemplate",
                json!({"TemplateId": cid})
            )
            .await
        ),
        "ResourceNotFound"
    );
}

/// The VOD search's bounds and the filters it cannot evaluate are refused, never ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_search_refuses_what_it_cannot_answer() {
    let mut s = TestServer::start(&keys()).await;
    assert!(s.publish("live", "m1", &fixture(CLIP_2S)).await);
    let f = s.receiver.next_of(100).await.body;
    let all = vod(&s, "SearchMedia", json!({})).await.unwrap();
    assert_eq!(all["TotalCount"], 1);
    assert_eq!(all["MediaInfoSet"][0]["FileId"], f["file_id"]);
    let by_id = vod(
        &s,
        "SearchMedia",
        json!({"FileIds": [f["file_id"]], "SourceTypes": ["Record"]}),
    )
    .await
    .unwrap();
    assert_eq!(by_id["TotalCount"], 1);
    let none = vod(&s, "SearchMedia", json!({"SourceTypes": ["Upload"]}))
        .await
        .unwrap();
    assert_eq!(none["TotalCount"], 0);
    let other = vod(&s, "SearchMedia", json!({"StreamIds": ["m2", "m3"]}))
        .await
        .unwrap();
    assert_eq!(other["TotalCount"], 0);
    let later = vod(
        &s,
        "SearchMedia",
        json!({"CreateTime": {"After": "2099-01-01T00:00:00+08:00"}}),
    )
    .await
    .unwrap();
    assert_eq!(later["TotalCount"], 0);
    let earlier = vod(
        &s,
        "SearchMedia",
        json!({"CreateTime": {"After": "2020-01-01T00:00:00Z"}, "StreamIds": ["m1", "x"]}),
    )
    .await
    .unwrap();
    assert_eq!(earlier["TotalCount"], 1);
    for bad in [
        json!({"Names": ["a"]}),
        json!({"Limit": 6000}),
        json!({"Offset": 4999, "Limit": 2}),
        json!({"CreateTime": {"After": "yesterday"}}),
        json!({"Sort": {"Field": "Name"}}),
        json!({"StreamIds": (0..11).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
    ] {
        assert_eq!(
            code(vod(&s, "SearchMedia", bad.clone()).await),
            "InvalidParameterValue",
            "{bad}"
        );
    }
    assert_eq!(
        code(vod(&s, "DescribeMediaInfos", json!({})).await),
        "MissingParameter"
    );
    assert_eq!(
        code(vod(&s, "DeleteMedia", json!({})).await),
        "MissingParameter"
    );
    assert_eq!(
        code(vod(&s, "ModifyMediaInfo", json!({"FileId": "x"})).await),
        "ResourceNotFound.FileNotExist"
    );
}

/// A finished push is in the SDK's push history and its callbacks in the delivery log;
/// `ForbidLiveStream` refuses the next push until `ResumeLiveStream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_history_callback_log_and_forbid_through_the_sdk() {
    let scenario = Scenario::new()
        .server("domain = \"push.example.com\"")
        .config(&keys());
    let mut s = TestServer::from_scenario(scenario).await;
    let clip = fixture(CLIP_2S);
    assert!(s.publish("live", "hist1", &clip).await);
    let begin = s.receiver.next_of(1).await.body;
    let end = s.receiver.next_of(0).await.body;
    assert_eq!(end["sequence"], begin["sequence"]);
    let now = begin["event_time"].as_i64().unwrap();
    let iso = livetape_tencent::iso::format_utc;
    let window = json!({"StartTime": iso(now - 3600), "EndTime": iso(now + 3600)});
    let with = |extra: Value| {
        let mut v = window.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };

    let published = live(
        &s,
        "DescribeLiveStreamPublishedList",
        with(json!({"DomainName": "push.example.com", "StreamName": "hist"})),
    )
    .await
    .unwrap();
    assert_eq!(published["TotalNum"], 1, "{published}");
    let p = &published["PublishInfo"][0];
    assert_eq!(
        (
            p["StreamName"].as_str(),
            p["AppName"].as_str(),
            p["DomainName"].as_str()
        ),
        (Some("hist1"), Some("live"), Some("push.example.com"))
    );
    assert!(p["StreamEndTime"].as_str().unwrap() >= p["StreamStartTime"].as_str().unwrap());
    assert_eq!(p["ClientIp"], "127.0.0.1");
    let strict = |name: &str| with(json!({"StreamName": name, "IsStrict": 1}));
    let events = live(&s, "DescribeLiveStreamEventList", strict("hist1"))
        .await
        .unwrap();
    assert_eq!(events["TotalNum"], 1, "{events}");
    assert_eq!(events["EventList"][0]["StopReason"], end["errmsg"]);
    let none = live(&s, "DescribeLiveStreamEventList", strict("hist"))
        .await
        .unwrap();
    assert_eq!(none["TotalNum"], 0, "strict: `hist` is not `hist1`");
    let month = json!({"StartTime": iso(now - 40 * 86_400), "EndTime": iso(now)});
    assert_eq!(
        code(live(&s, "DescribeLiveStreamEventList", month).await),
        "InvalidParameterValue"
    );

    // The delivery log: the receiver has both events; their "delivered" commit follows
    // the answer, so the log is read until it shows them (bounded).
    let log = with(json!({"StreamName": "hist1", "ResultCode": 0}));
    let mut types = Vec::new();
    for _ in 0..100 {
        let got = live(&s, "DescribeCallbackRecordsList", log.clone())
            .await
            .unwrap();
        types = got["DataInfoList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["EventType"].as_i64().unwrap())
            .collect();
        if types.contains(&0) && types.contains(&1) {
            let r = &got["DataInfoList"][0];
            assert_eq!(r["ResultCode"], 0);
            assert_eq!(r["StreamId"], "hist1");
            assert!(r["Request"].as_str().unwrap().contains("\"event_type\""));
            assert!(r["EventTime"].as_str().unwrap().ends_with('Z'));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        types.contains(&0) && types.contains(&1),
        "delivered events 1 and 0 in the log: {types:?}"
    );
    let beijing = json!({
        "StartTime": livetape_tencent::cst::format_cst(now - 3600),
        "EndTime": livetape_tencent::cst::format_cst(now + 3600),
        "StreamName": "hist1", "EventType": 1,
    });
    let got = live(&s, "DescribeCallbackRecordsList", beijing)
        .await
        .unwrap();
    assert_eq!(got["TotalNum"], 1, "{got}");
    assert!(
        !got["DataInfoList"][0]["EventTime"]
            .as_str()
            .unwrap()
            .contains('T')
    );

    // Forbidden: the next push is refused (no event 1) until the ban is lifted.
    let hist1 = json!({"AppName": "live", "DomainName": "push.example.com", "StreamName": "hist1"});
    let mut ban = hist1.clone();
    ban["Reason"] = json!("test ban");
    live(&s, "ForbidLiveStream", ban).await.unwrap();
    assert!(
        !s.publish("live", "hist1", &clip).await,
        "a forbidden push is refused"
    );
    assert!(
        s.publish("live", "other", &clip).await,
        "other streams push"
    );
    assert_eq!(s.receiver.next_of(1).await.body["stream_id"], "other");
    live(&s, "ResumeLiveStream", hist1).await.unwrap();
    assert!(s.publish("live", "hist1", &clip).await);
    let again = loop {
        let e = s.receiver.next_of(1).await.body;
        if e["stream_id"] == "hist1" {
            break e;
        }
    };
    assert_ne!(again["sequence"], begin["sequence"]);
}

/// Push and play keys set through the SDK: the next push on the domain needs the new key, a
/// live play request its play key (by the `Host` it names); both survive a restart, Enable 0
/// opens the domain again, and other domains keep the file's keys. Bad values name the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_play_auth_keys_through_the_sdk_apply_to_the_next_push_and_survive_a_restart() {
    let scenario = Scenario::new()
        .server("domain = \"push.example.com\"")
        .config(&format!(
            "[push_auth]\nkey = \"filekey\"\n[live]\nplay_key = \"fileplay\"\n{}",
            keys()
        ));
    let mut s = TestServer::from_scenario(scenario).await;
    let clip = fixture(CLIP_2S);
    let domain = json!({"DomainName": "push.example.com"});
    let expiry = format!(
        "{:X}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600
    );
    let signed = |key: &str, stream: &str| {
        format!(
            "{stream}?txSecret={}&txTime={expiry}",
            md5_hex(&format!("{key}{stream}{expiry}"))
        )
    };

    // Before any change the file's keys are in force and shown.
    let before = live(&s, "DescribeLivePushAuthKey", domain.clone())
        .await
        .unwrap();
    let info = &before["PushAuthKeyInfo"];
    assert_eq!(
        (&info["Enable"], &info["MasterAuthKey"], &info["AuthDelta"]),
        (&json!(1), &json!("filekey"), &json!(0))
    );

    let mut change = domain.clone();
    change["MasterAuthKey"] = json!("apikey1");
    change["BackupAuthKey"] = json!("apikey2");
    change["AuthDelta"] = json!(120);
    live(&s, "ModifyLivePushAuthKey", change).await.unwrap();
    assert!(
        !s.publish("live", &signed("filekey", "k1"), &clip).await,
        "the file's key no longer holds for this domain"
    );
    assert!(s.publish("live", &signed("apikey2", "k1"), &clip).await);
    assert_eq!(s.receiver.next_of(1).await.body["stream_id"], "k1");

    // Play: keyed by the request's Host (127.0.0.1 here); the refusal comes before the
    // "not live" answer, so no stream is needed to tell them apart.
    let play = |q: String| {
        let url = s.http(&format!("/live/live/p1.flv{q}"));
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    let play_sig = |key: &str| format!("?{}", signed(key, "p1").split_once('?').unwrap().1);
    assert_eq!(play(play_sig("fileplay")).await, 404, "the file's play key");
    let mut change = json!({"DomainName": "127.0.0.1", "AuthKey": "playapi", "Enable": 1});
    live(&s, "ModifyLivePlayAuthKey", change.clone())
        .await
        .unwrap();
    assert_eq!(play(play_sig("fileplay")).await, 403);
    assert_eq!(play(String::new()).await, 403);
    assert_eq!(play(play_sig("playapi")).await, 404);
    let shown = live(
        &s,
        "DescribeLivePlayAuthKey",
        json!({"DomainName": "127.0.0.1"}),
    )
    .await
    .unwrap();
    assert_eq!(shown["PlayAuthKeyInfo"]["AuthKey"], "playapi");
    assert_eq!(shown["PlayAuthKeyInfo"]["AuthBackKey"], "");

    // Bad values, each naming its field; nothing changes.
    for (field, value) in [
        ("AuthKey", json!("no-dashes")),
        ("AuthKey", json!("k".repeat(257))),
        ("AuthDelta", json!(-1)),
        ("AuthDelta", json!(10 * 365 * 86_400 + 1)),
        ("Enable", json!(2)),
    ] {
        let mut bad = change.clone();
        bad[field] = value;
        let (got, message) = live(&s, "ModifyLivePlayAuthKey", bad).await.unwrap_err();
        assert_eq!(got, "InvalidParameterValue", "{field}: {message}");
        assert!(message.contains(field), "{message}");
    }
    change["AuthKey"] = json!("");
    let (got, message) = live(&s, "ModifyLivePlayAuthKey", change.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (got.as_str(), message.contains("AuthKey")),
        ("InvalidParameterValue", true),
        "enabled without a key: {message}"
    );
    assert_eq!(
        code(live(&s, "DescribeLivePushAuthKey", json!({})).await),
        "MissingParameter"
    );

    // Persisted: a restarted server still asks for the API's keys.
    let mut s = s.restart().await;
    let info = live(&s, "DescribeLivePushAuthKey", domain.clone())
        .await
        .unwrap();
    assert_eq!(info["PushAuthKeyInfo"]["MasterAuthKey"], "apikey1");
    assert_eq!(info["PushAuthKeyInfo"]["AuthDelta"], 120);
    assert!(!s.publish("live", &signed("filekey", "k2"), &clip).await);
    assert!(s.publish("live", &signed("apikey1", "k2"), &clip).await);
    assert_eq!(s.receiver.next_of(1).await.body["stream_id"], "k2");
    let play = |q: String| {
        let url = s.http(&format!("/live/live/p1.flv{q}"));
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(play(String::new()).await, 403);

    // Enable 0 opens the domain (the keys are kept for the next Enable 1).
    let mut off = domain.clone();
    off["Enable"] = json!(0);
    live(&s, "ModifyLivePushAuthKey", off).await.unwrap();
    assert!(
        s.publish("live", "k3", &clip).await,
        "auth off for the domain"
    );
    let info = live(&s, "DescribeLivePushAuthKey", domain).await.unwrap();
    assert_eq!(
        (
            &info["PushAuthKeyInfo"]["Enable"],
            &info["PushAuthKeyInfo"]["MasterAuthKey"]
        ),
        (&json!(0), &json!("apikey1"))
    );
    // Another domain was never changed: the file's key.
    let other = live(
        &s,
        "DescribeLivePushAuthKey",
        json!({"DomainName": "other.example.com"}),
    )
    .await
    .unwrap();
    assert_eq!(other["PushAuthKeyInfo"]["MasterAuthKey"], "filekey");

    // At most MAX_AUTH_KEY_DOMAINS (100) play domains of their own: 127.0.0.1 and 99 more fit,
    // the next is refused, and a stored domain can still be changed.
    let each = |n: &'static str, d: &'static str| {
        let params = json!({"DomainName": d, "AuthKey": "k", "Enable": 1});
        let s = &s;
        async move {
            let flags = ["--each", n];
            call_as(
                s,
                SECRET_ID,
                SECRET_KEY,
                "live",
                "ModifyLivePlayAuthKey",
                params,
                &flags,
            )
            .await
        }
    };
    each("99", "play{i}.example.com").await.unwrap();
    assert_eq!(
        code(each("1", "one-more.example.com").await),
        "LimitExceeded"
    );
    each("1", "play7.example.com").await.unwrap();
}

/// A real-time ffmpeg push seen by `DescribeLiveStreamPushInfoList`: per-track rates from the
/// hub (the fixture is 640x360 H.264 at 30 fps ~1 Mbit/s, AAC 48 kHz ~128 kbit/s), filters by
/// domain and app, paging limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_info_list_shows_the_hubs_rates_of_a_live_push() {
    let scenario = Scenario::new()
        .server("domain = \"push.example.com\"")
        .config(&keys());
    let mut s = TestServer::from_scenario(scenario).await;
    let (addr, clip) = (s.rtmp(), fixture(CLIP_10S));
    let push =
        tokio::spawn(async move { publish(addr, "live", "rates", &clip, Pace::Realtime).await });
    assert_eq!(s.receiver.next_of(1).await.body["stream_id"], "rates");
    // The rates exist once a second of media has been metered per track; poll (bounded).
    let mut row = Value::Null;
    for _ in 0..40 {
        let got = live(&s, "DescribeLiveStreamPushInfoList", json!({}))
            .await
            .unwrap();
        row = got["DataInfoList"][0].clone();
        if row["VideoFps"].as_u64().unwrap_or(0) > 0 && row["AudioFps"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(
                (got["TotalNum"].as_i64(), got["PageSize"].as_i64()),
                (Some(1), Some(200))
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(row["VideoFps"], 30, "{row}");
    let audio_fps = row["AudioFps"].as_u64().unwrap();
    assert!((46..=48).contains(&audio_fps), "48000/1024 = 46.9: {row}");
    let video_bps = row["VideoSpeed"].as_u64().unwrap();
    assert!((500_000..=1_600_000).contains(&video_bps), "{row}");
    let audio_bps = row["AudioSpeed"].as_u64().unwrap();
    assert!((64_000..=200_000).contains(&audio_bps), "{row}");
    assert_eq!(
        (
            row["StreamName"].as_str(),
            row["AppName"].as_str(),
            row["PushDomain"].as_str(),
            row["ClientIp"].as_str(),
            row["Vcodec"].as_str(),
            row["Acodec"].as_str(),
            row["Resolution"].as_str(),
        ),
        (
            Some("rates"),
            Some("live"),
            Some("push.example.com"),
            Some("127.0.0.1"),
            Some("h264"),
            Some("aac"),
            Some("640*360"),
        ),
        "{row}"
    );
    assert_eq!(row["AsampleRate"], 48_000, "{row}");
    assert_eq!(row["MetaFps"], 30, "ffmpeg's onMetaData framerate: {row}");
    let begin = row["BeginPushTime"].as_str().unwrap();
    assert!(
        livetape_tencent::cst::parse_cst(begin).is_some(),
        "Beijing time: {begin}"
    );

    for other in [
        json!({"PushDomain": "other.example.com"}),
        json!({"AppName": "other"}),
    ] {
        let got = live(&s, "DescribeLiveStreamPushInfoList", other)
            .await
            .unwrap();
        assert_eq!(got["TotalNum"], 0, "{got}");
    }
    for bad in [
        json!({"PageSize": 0}),
        json!({"PageSize": 1001}),
        json!({"PageNum": 10_001}),
    ] {
        assert_eq!(
            code(live(&s, "DescribeLiveStreamPushInfoList", bad).await),
            "InvalidParameterValue"
        );
    }
    assert!(push.await.unwrap());
}

/// `ModifyMediaInfo` sets a recording's expiry, which retention honours (checked every
/// second here): a future time and "never" are shown by `DescribeMediaInfos`, a past one
/// deletes the file; fields livetape keeps no value for are refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_media_info_sets_the_expiry_retention_honours() {
    let scenario = Scenario::new().config(&format!("[storage]\nretention_check_s = 1\n{}", keys()));
    let mut s = TestServer::from_scenario(scenario).await;
    assert!(s.publish("live", "exp1", &fixture(CLIP_2S)).await);
    let file_id = s.receiver.next_of(100).await.body["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        expire_time(&s, &file_id).await,
        "9999-12-31T23:59:59Z",
        "the default template keeps"
    );
    let set = |t: &str| json!({"FileId": file_id, "ExpireTime": t});
    vod(&s, "ModifyMediaInfo", set("2099-01-02T03:04:05Z"))
        .await
        .unwrap();
    assert_eq!(expire_time(&s, &file_id).await, "2099-01-02T03:04:05Z");
    vod(&s, "ModifyMediaInfo", set("9999-12-31T23:59:59Z"))
        .await
        .unwrap();
    assert_eq!(expire_time(&s, &file_id).await, "9999-12-31T23:59:59Z");

    for (field, value) in [
        ("Name", json!("x")),
        ("ClassId", json!(3)),
        ("AddTags", json!(["t"])),
    ] {
        let mut bad = json!({"FileId": file_id});
        bad[field] = value;
        let (got, message) = vod(&s, "ModifyMediaInfo", bad).await.unwrap_err();
        assert_eq!(got, "InvalidParameterValue", "{field}");
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(
        code(vod(&s, "ModifyMediaInfo", set("tomorrow")).await),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(
            vod(
                &s,
                "ModifyMediaInfo",
                json!({"FileId": "nope", "ExpireTime": "2099-01-01T00:00:00Z"})
            )
            .await
        ),
        "ResourceNotFound.FileNotExist"
    );

    // A past expiry: retention deletes the recording at its next check (bounded wait).
    vod(&s, "ModifyMediaInfo", set("2020-01-01T00:00:00Z"))
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..60 {
        let got = vod(
            &s,
            "DescribeMediaInfos",
            json!({"FileIds": [file_id.clone()]}),
        )
        .await
        .unwrap();
        if got["NotExistFileIdSet"] == json!([file_id.clone()]) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(gone, "retention deleted the expired recording");
}

/// `BasicInfo.ExpireTime` of one recording, through the SDK.
async fn expire_time(s: &TestServer, file_id: &str) -> Value {
    let got = vod(s, "DescribeMediaInfos", json!({"FileIds": [file_id]}))
        .await
        .unwrap();
    got["MediaInfoSet"][0]["BasicInfo"]["ExpireTime"].clone()
}
