//! Every `/v1` answer the suite sees, checked against the server's OpenAPI document.
//!
//! [`TestServer::http`](super::TestServer::http) hands out, for `/v1` paths, the address of a
//! small proxy in front of the server: it forwards each request as it is (method, headers,
//! body; from loopback, like the test itself) and returns the answer unchanged, after checking
//! it against `/v1/openapi.json` ([`livetape::openapi_json`], the same text the route serves):
//! its status must be documented for the route's path and method, and its body must match
//! that status's schema. A mismatch is recorded, printed at once, and fails the test when its
//! `TestServer` is dropped (or at [`SpecCheck::assert_clean`]).
//!
//! The check is stricter than the document on one point: an object the document describes
//! must not carry fields it does not list (`additionalProperties: false`, and
//! `unevaluatedProperties: false` on an `allOf`), so a field added to a response type without
//! reaching the document (or renamed) fails here. The document itself leaves responses open
//! to new fields, as clients expect.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

/// The document, prepared for checking (strict objects), and the compiled checks.
struct Spec {
    doc: Value,
    /// Path templates (`/v1/recordings/{file_id}`), split on `/`.
    routes: Vec<(String, Vec<String>)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static SPEC: LazyLock<Spec> = LazyLock::new(|| {
    let mut doc: Value =
        serde_json::from_str(livetape::openapi_json()).expect("/v1/openapi.json is JSON");
    let schemas = doc["components"]["schemas"].clone();
    strict(&mut doc, &schemas, false);
    let routes = doc["paths"]
        .as_object()
        .expect("the document has paths")
        .keys()
        .map(|p| (p.clone(), p.split('/').map(str::to_owned).collect()))
        .collect();
    Spec {
        doc,
        routes,
        validators: Mutex::new(HashMap::new()),
    }
});

/// Makes every described object refuse fields it does not list (see the module docs).
fn strict(v: &mut Value, schemas: &Value, in_all_of: bool) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get_mut("allOf") {
                for item in items.iter_mut() {
                    // An item by reference is checked as its component, open, inside the whole.
                    if let Some(name) = item["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    {
                        *item = schemas[name].clone();
                        if let Some(o) = item.as_object_mut() {
                            o.remove("additionalProperties");
                        }
                    }
                    strict(item, schemas, true);
                }
                map.entry("unevaluatedProperties")
                    .or_insert(Value::Bool(false));
            }
            if !in_all_of && map.contains_key("properties") {
                map.entry("additionalProperties")
                    .or_insert(Value::Bool(false));
            }
            for (k, child) in map.iter_mut() {
                if k != "allOf" {
                    strict(child, schemas, false);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| strict(i, schemas, false)),
        _ => {}
    }
}

/// `~` and `/` escaped for a JSON pointer.
fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Spec {
    /// The template of the documented path `path` matches, if one does.
    fn route(&self, path: &str) -> Option<&str> {
        let segs: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(_, t)| {
                t.len() == segs.len()
                    && t.iter().zip(&segs).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .map(|(p, _)| p.as_str())
    }

    /// The schema at `pointer`, compiled with the whole document as its root (so its
    /// `#/components/schemas/...` references resolve).
    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let mut root = self.doc.clone();
        // A URI fragment: the pointer's braces (`{id}`) percent-encoded.
        let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
        root["$ref"] = Value::String(format!("#{fragment}"));
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .map(Arc::new)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        cache.insert(pointer.to_owned(), v.clone());
        Ok(v)
    }

    /// Whether an answer of the server is what the document says; `Err` says how it is not.
    /// `Ok(Some("GET /v1/recordings/{file_id} 200"))` names the documented answer it was.
    fn check(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Option<String>, String> {
        if path != "/v1" && !path.starts_with("/v1/") {
            return Ok(None);
        }
        // CORS preflights and HEAD are the layers' and axum's, not the API's.
        if *method == Method::OPTIONS || *method == Method::HEAD {
            return Ok(None);
        }
        let what = format!("{method} {path} → {status}");
        let success = (200..300).contains(&status);
        let Some(template) = self.route(path) else {
            // Unrouted paths answer axum's 404; only a success would be an undocumented route.
            return if success {
                Err(format!("{what}: no path of the document matches"))
            } else {
                Ok(None)
            };
        };
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][template][&m];
        if op.is_null() {
            return if success {
                Err(format!("{what}: {template} documents no {method}"))
            } else {
                Ok(None)
            };
        }
        let resp = &op["responses"][status.to_string()];
        if resp.is_null() {
            return Err(format!(
                "{what}: {status} is not documented for {method} {template}"
            ));
        }
        let label = format!("{method} {template} {status}");
        let Some(content) = resp["content"].as_object().filter(|c| !c.is_empty()) else {
            return if body.is_empty() {
                Ok(Some(label))
            } else {
                Err(format!(
                    "{what}: documented without a body, answered {:?}",
                    String::from_utf8_lossy(body)
                ))
            };
        };
        let Some(media) = content.keys().find(|k| k.as_str() == "application/json") else {
            return Err(format!("{what}: documents no application/json answer"));
        };
        if !content_type.is_some_and(|c| c.starts_with("application/json")) {
            return Err(format!(
                "{what}: content-type {content_type:?}, documented {media}"
            ));
        }
        let instance: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "{what}: body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(body)
            )
        })?;
        let pointer = format!(
            "/paths/{}/{m}/responses/{status}/content/{}/schema",
            pointer_token(template),
            pointer_token(media)
        );
        let v = self.validator(&pointer)?;
        let errors: Vec<String> = v
            .iter_errors(&instance)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(Some(label))
        } else {
            Err(format!("{what}: {}\n  body: {instance}", errors.join("; ")))
        }
    }
}

/// Checks an answer against the document (what the proxy does to each `/v1` answer); for
/// tests of the check itself.
pub fn check_answer(
    method: &Method,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    SPEC.check(method, path, status, content_type, body)
        .map(drop)
}

/// Every documented answer, as `METHOD path status` (`GET /v1/recordings/{file_id} 200`).
pub fn documented() -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (path, item) in SPEC.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                out.insert(format!("{} {path} {status}", method.to_ascii_uppercase()));
            }
        }
    }
    out
}

/// What a [`SpecCheck`] saw: how many `/v1` answers it checked, and what did not match.
#[derive(Default)]
struct Seen {
    checked: usize,
    violations: Vec<String>,
    /// The documented answers seen, as [`documented`] names them.
    answers: std::collections::BTreeSet<String>,
}

/// The checking proxy of one [`TestServer`](super::TestServer) (a new one after a restart,
/// the same record of what was seen).
pub struct SpecCheck {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

struct Proxy {
    target: SocketAddr,
    client: reqwest::Client,
    seen: Arc<Mutex<Seen>>,
}

impl SpecCheck {
    /// A proxy on loopback in front of the server at `target`.
    pub async fn start(target: SocketAddr) -> Self {
        Self::start_with(target, Arc::default()).await
    }

    async fn start_with(target: SocketAddr, seen: Arc<Mutex<Seen>>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // No idle connections left open to the server: its per-address caps count them.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let proxy = Arc::new(Proxy {
            target,
            client,
            seen: seen.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(forward).with_state(proxy);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, task }
    }

    /// The same record, in front of the server's next run.
    pub async fn restarted(self, target: SocketAddr) -> Self {
        self.task.abort();
        Self::start_with(target, self.seen.clone()).await
    }

    /// How many `/v1` answers were checked so far.
    pub fn checked(&self) -> usize {
        self.seen.lock().unwrap().checked
    }

    /// The documented answers seen so far, as [`documented`] names them.
    pub fn answers(&self) -> std::collections::BTreeSet<String> {
        self.seen.lock().unwrap().answers.clone()
    }

    /// Panics with every answer that did not match the document, if any did.
    pub fn assert_clean(&self) {
        let v = std::mem::take(&mut self.seen.lock().unwrap().violations);
        assert!(
            v.is_empty(),
            "{} /v1 answer(s) did not match /v1/openapi.json:\n{}",
            v.len(),
            v.join("\n")
        );
    }
}

impl Drop for SpecCheck {
    fn drop(&mut self) {
        self.task.abort();
        if !std::thread::panicking() {
            self.assert_clean();
        }
    }
}

/// Hop-by-hop headers, and those the client or server sets from the body.
fn forwarded(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for h in [
        header::HOST,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::TE,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        out.remove(h);
    }
    out.remove("keep-alive");
    out
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{path_and_query}", p.target);
    let sent = p
        .client
        .request(parts.method.clone(), url)
        .headers(forwarded(&parts.headers))
        .body(body)
        .send()
        .await;
    let r = match sent {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("test proxy: {e}")))
                .unwrap();
        }
    };
    let status = r.status();
    let headers = forwarded(r.headers());
    let bytes = r.bytes().await.unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let path = parts.uri.path();
    let outcome = SPEC.check(&parts.method, path, status.as_u16(), content_type, &bytes);
    {
        let mut seen = p.seen.lock().unwrap();
        seen.checked += 1;
        match outcome {
            Ok(Some(answer)) => {
                seen.answers.insert(answer);
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("OPENAPI MISMATCH: {e}");
                seen.violations.push(e);
            }
        }
    }
    let mut resp = Response::builder().status(status);
    *resp.headers_mut().unwrap() = headers;
    resp.body(Body::from(bytes)).unwrap()
}
