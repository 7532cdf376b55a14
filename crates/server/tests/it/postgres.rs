//! The server on a PostgreSQL catalogue (`[catalog] url = "postgres://.."`): a real push is
//! recorded, catalogued with its callback, and listed by both listing APIs.

use crate::common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_lists_on_postgres() {
    let db = PgDatabase::create().await;
    let extra = format!("[api]\nkey = \"apikey\"\n[catalog]\nurl = \"{}\"\n", db.url);
    let mut s = TestServer::start(&extra).await;
    assert!(s.publish("live", "pgroom", &fixture(CLIP_10S)).await);
    let file = s.receiver.next_of(100).await.body;
    assert_signed(&file);
    assert_eq!(file["stream_id"], "pgroom");
    let file_id = file["file_id"].as_str().unwrap().to_owned();
    // Nothing went to SQLite: the catalogue is the PostgreSQL database.
    assert!(!s.data_path("catalog.db").exists());

    let v: Value = s
        .api_json("/v1/recordings?stream_id=pgroom", "apikey")
        .await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["recordings"][0]["file_id"], file_id.as_str());
    assert_eq!(v["recordings"][0]["width"], 640);

    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let sign = md5_hex(&format!("apikey{t}"));
    let v: Value = reqwest::get(s.http(&format!(
        "/common_access?appid=1&interface=Live_Tape_GetFilelist&Param.s.channel_id=pgroom\
         &Param.n.page_no=1&Param.n.page_size=20&t={t}&sign={sign}"
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["ret"], 0, "{v}");
    assert_eq!(v["output"]["all_count"], 1, "{v}");
    let list = v["output"]["file_list"].as_array().unwrap();
    assert_eq!(list[0]["file_id"], file_id.as_str());
    assert_eq!(list[0]["record_file_url"], file["video_url"]);
    // The file it names is served, whole.
    let bytes = reqwest::get(s.local_url(file["video_url"].as_str().unwrap()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, file["file_size"].as_u64().unwrap());
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("f.mp4");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(probe_counts(&path), (300, 470), "every frame recorded");
    s.running.shutdown().await;
    db.drop_db().await;
}
