//! `/v1/openapi.json`: served without the key, lists every `/v1` route, and every `/v1`
//! answer matches it. The matching itself is the harness's (`common::spec`): each test's
//! `/v1` answers are checked; here every route is driven through its answers with real data
//! (a real push, its recording and its callbacks), and the check is shown to catch mismatches.

use crate::common::spec::{check_answer, documented};
use crate::common::{CLIP_10S, Pace, TestServer, WAIT, fixture, publish};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const KEY: &str = "openapi-key";

/// Every route of `/v1`, as the router has them (`http/*.rs`).
const ROUTES: &[&str] = &[
    "GET /v1/openapi.json",
    "GET /v1/recordings",
    "GET /v1/recordings/{file_id}",
    "DELETE /v1/recordings/{file_id}",
    "GET /v1/streams",
    "GET /v1/jobs",
    "GET /v1/record-templates",
    "POST /v1/record-templates",
    "GET /v1/record-templates/{name}",
    "PUT /v1/record-templates/{name}",
    "DELETE /v1/record-templates/{name}",
    "GET /v1/record-rules",
    "POST /v1/record-rules",
    "PUT /v1/record-rules/{id}",
    "DELETE /v1/record-rules/{id}",
    "GET /v1/callback-templates",
    "POST /v1/callback-templates",
    "GET /v1/callback-templates/{name}",
    "PUT /v1/callback-templates/{name}",
    "DELETE /v1/callback-templates/{name}",
    "GET /v1/callback-rules",
    "POST /v1/callback-rules",
    "PUT /v1/callback-rules/{id}",
    "DELETE /v1/callback-rules/{id}",
    "GET /v1/deliveries",
    "GET /v1/deliveries/{id}",
    "POST /v1/deliveries/{id}/retry",
];

/// `method path` with the key (or without), an optional JSON body; status and JSON answer.
async fn call(
    srv: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: bool,
) -> (u16, Value) {
    let mut rq = reqwest::Client::new().request(method, srv.http(path));
    if key {
        rq = rq.bearer_auth(KEY);
    }
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `call` with the key, asserting the status.
async fn expect(
    srv: &TestServer,
    status: u16,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (st, v) = call(srv, method.clone(), path, body, true).await;
    assert_eq!(st, status, "{method} {path}: {v}");
    v
}

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.insert(r.to_owned());
            }
            m.values().for_each(|c| refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_public_and_lists_every_route() {
    let srv = TestServer::start(&format!("[api]\nkey = \"{KEY}\"")).await;
    // No key: the document is public, the data is not.
    let r = reqwest::get(srv.http("/v1/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(livetape::openapi_json()).unwrap()
    );
    assert_eq!(doc["openapi"], "3.1.0");
    let (st, v) = call(&srv, Method::GET, "/v1/recordings", None, false).await;
    assert_eq!((st, v["error"].is_string()), (401, true), "{v}");

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let route = format!("{} {path}", method.to_ascii_uppercase());
            let responses = op["responses"].as_object().unwrap();
            if path == "/v1/openapi.json" {
                assert_eq!(op["security"], json!([{}]), "{route} needs no key");
            } else {
                assert!(responses.contains_key("401"), "{route}: 401");
                assert!(responses.contains_key("500"), "{route}: 500");
                assert_eq!(
                    responses.contains_key("403"),
                    method != "get",
                    "{route}: 403"
                );
            }
            assert!(op["summary"].is_string(), "{route} has a summary");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{route} documents its success"
            );
            assert!(listed.insert(route.clone()), "{route} twice");
        }
    }
    let routes: BTreeSet<String> = ROUTES.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, routes, "the document's routes are the router's");
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
    );
    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{r}");
    }
    srv.api.assert_clean();
}

/// Drives every route through its answers with real data; the harness checks each answer
/// against the document, and this checks that every route's success was among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_its_document_says() {
    let mut srv = TestServer::start(&format!("[api]\nkey = \"{KEY}\"")).await;
    use Method as M;
    // The push-start callback is refused: a delivery that is not delivered.
    srv.receiver.script("/begin", &[500; 60]);

    // A live stream, listed while it is pushed (at twice real time: about 5 s).
    let rtmp = srv.rtmp();
    let push = tokio::spawn(async move {
        publish(rtmp, "live", "spec", &fixture(CLIP_10S), Pace::Rate(2)).await
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = expect(&srv, 200, M::GET, "/v1/streams", None).await;
        if v["streams"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never live: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(push.await.unwrap());
    let file_id = srv.receiver.next_of(100).await.body["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = call(&srv, M::GET, "/v1/streams", None, false).await;
    assert_eq!(st, 401);
    let v = expect(&srv, 200, M::GET, "/v1/jobs", None).await;
    assert!(v["jobs"].is_array(), "{v}");

    // Recordings.
    let v = expect(&srv, 200, M::GET, "/v1/recordings", None).await;
    assert_eq!(v["total"], 1, "{v}");
    expect(&srv, 200, M::GET, "/v1/recordings?stream_id=spec&app=live&format=mp4&from=0&to=99999999999999&order=desc&page=1&page_size=5", None).await;
    for bad in ["page=0", "page_size=101", "order=up", "nope=1", "from=x"] {
        expect(&srv, 400, M::GET, &format!("/v1/recordings?{bad}"), None).await;
    }
    expect(
        &srv,
        200,
        M::GET,
        &format!("/v1/recordings/{file_id}"),
        None,
    )
    .await;
    expect(&srv, 404, M::GET, "/v1/recordings/nope", None).await;

    // Deliveries: the push's callbacks, delivered to the harness's receiver.
    let deadline = tokio::time::Instant::now() + WAIT;
    let id = loop {
        let v = expect(&srv, 200, M::GET, "/v1/deliveries?status=delivered", None).await;
        if let Some(id) = v["deliveries"][0]["id"].as_i64() {
            break id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing delivered: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    expect(
        &srv,
        200,
        M::GET,
        "/v1/deliveries?stream=spec&page=1&page_size=100",
        None,
    )
    .await;
    expect(&srv, 400, M::GET, "/v1/deliveries?status=lost", None).await;
    expect(&srv, 200, M::GET, &format!("/v1/deliveries/{id}"), None).await;
    expect(&srv, 404, M::GET, "/v1/deliveries/987654", None).await;
    expect(&srv, 400, M::GET, "/v1/deliveries/abc", None).await;
    expect(
        &srv,
        409,
        M::POST,
        &format!("/v1/deliveries/{id}/retry"),
        None,
    )
    .await;
    // The refused push-start callback: pending, or dead once its retries are spent.
    let v = expect(
        &srv,
        200,
        M::GET,
        "/v1/deliveries?stream=spec&page_size=100",
        None,
    )
    .await;
    let pending = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] != "delivered")
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("the refused push-start callback: {v}"));
    let v = expect(
        &srv,
        200,
        M::POST,
        &format!("/v1/deliveries/{pending}/retry"),
        None,
    )
    .await;
    assert_ne!(v["status"], "delivered", "{v}");
    expect(&srv, 404, M::POST, "/v1/deliveries/987654/retry", None).await;
    expect(&srv, 400, M::POST, "/v1/deliveries/abc/retry", None).await;
    // A callback template for the rules below.
    expect(
        &srv,
        201,
        M::POST,
        "/v1/callback-templates",
        Some(json!({"name": "later", "stream_begin_url": "http://example.invalid/b"})),
    )
    .await;

    // Record templates and rules.
    expect(&srv, 200, M::GET, "/v1/record-templates", None).await;
    let t = json!({"name": "hd", "formats": ["flv", "mp4"], "interval_s": 600});
    expect(&srv, 201, M::POST, "/v1/record-templates", Some(t.clone())).await;
    expect(&srv, 409, M::POST, "/v1/record-templates", Some(t)).await;
    expect(
        &srv,
        400,
        M::POST,
        "/v1/record-templates",
        Some(json!({"name": "x", "interval_s": 5})),
    )
    .await;
    expect(
        &srv,
        400,
        M::POST,
        "/v1/record-templates",
        Some(json!({"name": "x", "colour": 1})),
    )
    .await;
    expect(&srv, 200, M::GET, "/v1/record-templates/hd", None).await;
    expect(&srv, 404, M::GET, "/v1/record-templates/sd", None).await;
    expect(
        &srv,
        200,
        M::PUT,
        "/v1/record-templates/hd",
        Some(json!({"formats": ["hls"]})),
    )
    .await;
    expect(
        &srv,
        201,
        M::PUT,
        "/v1/record-templates/sd",
        Some(json!({})),
    )
    .await;
    expect(
        &srv,
        400,
        M::PUT,
        "/v1/record-templates/sd",
        Some(json!({"name": "hd"})),
    )
    .await;
    expect(&srv, 200, M::GET, "/v1/record-rules", None).await;
    let rule = expect(
        &srv,
        201,
        M::POST,
        "/v1/record-rules",
        Some(json!({"app": "live", "stream": "hd_*", "template": "hd"})),
    )
    .await;
    let rule_id = rule["id"].as_i64().unwrap();
    expect(
        &srv,
        400,
        M::POST,
        "/v1/record-rules",
        Some(json!({"template": "nope"})),
    )
    .await;
    expect(&srv, 409, M::DELETE, "/v1/record-templates/hd", None).await;
    expect(
        &srv,
        200,
        M::PUT,
        &format!("/v1/record-rules/{rule_id}"),
        Some(json!({"app": "live", "stream": "hd_*", "template": "sd"})),
    )
    .await;
    // The same patterns as the catch-all rule.
    expect(
        &srv,
        409,
        M::PUT,
        &format!("/v1/record-rules/{rule_id}"),
        Some(json!({"template": "sd"})),
    )
    .await;
    expect(
        &srv,
        400,
        M::PUT,
        &format!("/v1/record-rules/{rule_id}"),
        Some(json!({"template": "a b"})),
    )
    .await;
    expect(
        &srv,
        404,
        M::PUT,
        "/v1/record-rules/999",
        Some(json!({"template": "sd"})),
    )
    .await;
    expect(
        &srv,
        404,
        M::PUT,
        "/v1/record-rules/abc",
        Some(json!({"template": "sd"})),
    )
    .await;
    expect(
        &srv,
        204,
        M::DELETE,
        &format!("/v1/record-rules/{rule_id}"),
        None,
    )
    .await;
    expect(
        &srv,
        404,
        M::DELETE,
        &format!("/v1/record-rules/{rule_id}"),
        None,
    )
    .await;
    expect(&srv, 204, M::DELETE, "/v1/record-templates/hd", None).await;
    expect(&srv, 404, M::DELETE, "/v1/record-templates/hd", None).await;

    // Callback templates and rules.
    let v = expect(&srv, 200, M::GET, "/v1/callback-templates", None).await;
    assert_eq!(v["templates"][0]["key"], "***", "{v}");
    expect(&srv, 200, M::GET, "/v1/callback-templates/later", None).await;
    expect(&srv, 404, M::GET, "/v1/callback-templates/nope", None).await;
    expect(
        &srv,
        400,
        M::POST,
        "/v1/callback-templates",
        Some(json!({"name": "x"})),
    )
    .await;
    expect(
        &srv,
        409,
        M::POST,
        "/v1/callback-templates",
        Some(json!({"name": "later", "record_url": "http://example.invalid/r"})),
    )
    .await;
    expect(
        &srv,
        200,
        M::PUT,
        "/v1/callback-templates/later",
        Some(json!({"key": "k2", "record_url": "http://example.invalid/r"})),
    )
    .await;
    expect(
        &srv,
        201,
        M::PUT,
        "/v1/callback-templates/other",
        Some(json!({"record_url": "http://example.invalid/r"})),
    )
    .await;
    expect(
        &srv,
        400,
        M::PUT,
        "/v1/callback-templates/other",
        Some(json!({"record_url": "ftp://x"})),
    )
    .await;
    expect(&srv, 200, M::GET, "/v1/callback-rules", None).await;
    let rule = expect(
        &srv,
        201,
        M::POST,
        "/v1/callback-rules",
        Some(json!({"app": "edu", "template": "later"})),
    )
    .await;
    let rule_id = rule["id"].as_i64().unwrap();
    expect(
        &srv,
        400,
        M::POST,
        "/v1/callback-rules",
        Some(json!({"template": "nope"})),
    )
    .await;
    expect(&srv, 409, M::DELETE, "/v1/callback-templates/later", None).await;
    expect(
        &srv,
        200,
        M::PUT,
        &format!("/v1/callback-rules/{rule_id}"),
        Some(json!({"app": "edu", "template": "other"})),
    )
    .await;
    expect(
        &srv,
        404,
        M::PUT,
        "/v1/callback-rules/999",
        Some(json!({"template": "other"})),
    )
    .await;
    expect(
        &srv,
        204,
        M::DELETE,
        &format!("/v1/callback-rules/{rule_id}"),
        None,
    )
    .await;
    expect(&srv, 404, M::DELETE, "/v1/callback-rules/999", None).await;
    expect(&srv, 204, M::DELETE, "/v1/callback-templates/other", None).await;
    expect(&srv, 404, M::DELETE, "/v1/callback-templates/other", None).await;

    // A write without the key; a body that is not JSON.
    let (st, _) = call(
        &srv,
        M::DELETE,
        &format!("/v1/recordings/{file_id}"),
        None,
        false,
    )
    .await;
    assert_eq!(st, 401);
    let r = reqwest::Client::new()
        .post(srv.http("/v1/record-rules"))
        .bearer_auth(KEY)
        .body("template=default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    r.bytes().await.unwrap();

    // Recordings go last: deleted, then gone.
    expect(
        &srv,
        204,
        M::DELETE,
        &format!("/v1/recordings/{file_id}"),
        None,
    )
    .await;
    expect(
        &srv,
        404,
        M::DELETE,
        &format!("/v1/recordings/{file_id}"),
        None,
    )
    .await;
    expect(
        &srv,
        404,
        M::GET,
        &format!("/v1/recordings/{file_id}"),
        None,
    )
    .await;
    expect(&srv, 200, M::GET, "/v1/openapi.json", None).await;

    // Every route was answered with its success, and each answer matched the document.
    let seen = srv.api.answers();
    for route in ROUTES {
        assert!(
            seen.iter().any(|a| a.starts_with(&format!("{route} 2"))),
            "{route} never answered with a success"
        );
    }
    // The shared 401/403/500 answers are left out: seen or not, they are one schema.
    let unseen: Vec<String> = documented()
        .difference(&seen)
        .filter(|a| !a.ends_with(" 401") && !a.ends_with(" 403") && !a.ends_with(" 500"))
        .cloned()
        .collect();
    eprintln!("documented answers not exercised here: {unseen:?}");
    assert!(srv.api.checked() >= 70, "{}", srv.api.checked());
    srv.api.assert_clean();
}

/// The check fails an answer that does not match: a field renamed, missing, extra or of
/// another type, a status the route does not document, a body where none is documented, a
/// success on a route the document does not have.
#[test]
fn the_check_catches_an_answer_that_does_not_match() {
    let rec = json!({
        "file_id": "1_abc", "app": "live", "domain": "", "stream_id": "s", "sequence": "1",
        "format": "mp4", "start_ms": 1, "end_ms": 2, "duration_ms": 1, "size_bytes": 10,
        "video_url": "http://h/vod/1_abc/f0.mp4", "stream_param": "", "video_codec": "h264",
        "width": 640, "height": 360,
    });
    let json_ct = Some("application/json");
    let one = |v: &Value| serde_json::to_vec(v).unwrap();
    let get = |path: &str, status: u16, body: &Value| {
        check_answer(&Method::GET, path, status, json_ct, &one(body))
    };
    get("/v1/recordings/1_abc", 200, &rec).unwrap();
    let page = json!({"total": 1, "page": 1, "page_size": 20, "recordings": [rec]});
    get("/v1/recordings", 200, &page).unwrap();

    let mut renamed = rec.clone();
    let o = renamed.as_object_mut().unwrap();
    let v = o.remove("file_id").unwrap();
    o.insert("fileId".into(), v);
    let e = get("/v1/recordings/1_abc", 200, &renamed).unwrap_err();
    assert!(e.contains("file_id") && e.contains("fileId"), "{e}");
    let mut missing = rec.clone();
    missing.as_object_mut().unwrap().remove("height");
    let e = get(
        "/v1/recordings",
        200,
        &json!({"total": 1, "page": 1, "page_size": 20, "recordings": [missing]}),
    )
    .unwrap_err();
    assert!(e.contains("height"), "{e}");
    let mut typed = rec.clone();
    typed["size_bytes"] = json!("10");
    get("/v1/recordings/1_abc", 200, &typed).unwrap_err();
    let mut negative = rec.clone();
    negative["size_bytes"] = json!(-1);
    get("/v1/recordings/1_abc", 200, &negative).unwrap_err();

    // A flattened template: its fields and the stored times, and nothing else.
    let t = json!({"id": 1, "name": "hd", "formats": ["mp4"], "interval_s": 1800, "resume_s": 0,
                   "hls_target_s": 10, "storage_days": 0, "created_at_ms": 1, "updated_at_ms": 2});
    get("/v1/record-templates", 200, &json!({"templates": [t]})).unwrap();
    let mut extra = t.clone();
    extra["colour"] = json!("red");
    let e = get("/v1/record-templates/hd", 200, &extra).unwrap_err();
    assert!(e.contains("colour"), "{e}");
    let mut no_time = t.clone();
    no_time.as_object_mut().unwrap().remove("updated_at_ms");
    get("/v1/record-templates/hd", 200, &no_time).unwrap_err();
    let mut bad_format = t.clone();
    bad_format["formats"] = json!(["avi"]);
    get("/v1/record-templates/hd", 200, &bad_format).unwrap_err();

    // Errors: the one error body, on documented statuses only.
    let err = json!({"error": "recording x not found"});
    get("/v1/recordings/x", 404, &err).unwrap();
    get("/v1/recordings/x", 404, &json!({"message": "x"})).unwrap_err();
    let e = get("/v1/recordings/x", 418, &err).unwrap_err();
    assert!(e.contains("418 is not documented"), "{e}");
    check_answer(
        &Method::GET,
        "/v1/recordings/x",
        404,
        Some("text/plain"),
        b"no",
    )
    .unwrap_err();
    check_answer(&Method::DELETE, "/v1/recordings/x", 204, None, b"").unwrap();
    check_answer(&Method::DELETE, "/v1/recordings/x", 204, None, b"{}").unwrap_err();
    // Routes: axum's 404/405 for what the API does not have pass; a success there does not.
    check_answer(&Method::GET, "/v1/nope", 404, None, b"").unwrap();
    check_answer(&Method::GET, "/v1/nope", 200, json_ct, b"{}").unwrap_err();
    check_answer(&Method::GET, "/v1/record-rules/1", 405, None, b"").unwrap();
    check_answer(&Method::GET, "/v1/record-rules/1", 200, json_ct, b"{}").unwrap_err();
    // Outside /v1 nothing is checked.
    check_answer(&Method::GET, "/healthz", 200, json_ct, b"{}").unwrap();
}
