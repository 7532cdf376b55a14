//! The binary's command line: help, config validation, environment overrides.

use std::process::Command;

fn livetape() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_livetape"));
    c.env_remove("LIVETAPE_CONFIG");
    c
}

#[test]
fn help_explains_the_commands() {
    let out = livetape().arg("--help").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("serve") && s.contains("check-config"), "{s}");
    let out = livetape().args(["serve", "--help"]).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("1935") && s.contains("LIVETAPE_SERVER__HTTP_LISTEN"),
        "{s}"
    );
}

#[test]
fn environment_overrides_the_file_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[server]\nappid = 42\nhttp_listen = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = livetape()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("LIVETAPE_SERVER__HTTP_LISTEN", "127.0.0.1:9999")
        // The binary's own variables are not mistaken for config keys.
        .env("LIVETAPE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["appid"], 42);
    assert_eq!(v["server"]["http_listen"], "127.0.0.1:9999");
    assert_eq!(v["server"]["rtmp_listen"], "0.0.0.0:1935");
}

#[test]
fn a_bad_config_fails_naming_the_key() {
    let out = livetape()
        .arg("check-config")
        .env("LIVETAPE_SERVER__APPID", "not-a-number")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("server.appid"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[[record_template]]\nname = \"x\"\ninterval_s = 10\n",
    )
    .unwrap();
    let out = livetape()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("record_template[0].interval_s"), "{err}");

    let out = livetape()
        .args(["serve", "--config", "/nonexistent/livetape.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        r#"
        [push_auth]
        key = "push-secret-1"
        backup_key = "push-secret-2"
        [api]
        key = "api-secret"
        [live]
        play_key = "play-secret"
        [catalog]
        url = "postgres://livetape:db-secret@db.example/livetape"
        [storage]
        kind = "s3"
        bucket = "b"
        endpoint = "http://127.0.0.1:9000"
        access_key_id = "AKIDEXAMPLE"
        secret_access_key = "bucket-secret"
        [[callback_template]]
        name = "cb"
        key = "callback-secret"
        record_url = "http://hook.example/cb"
        "#,
    )
    .unwrap();
    let out = livetape()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "push-secret-1",
        "push-secret-2",
        "api-secret",
        "play-secret",
        "db-secret",
        "bucket-secret",
        "callback-secret",
    ] {
        assert!(!s.contains(secret), "{secret} printed:\n{s}");
    }
    assert!(s.contains("***"), "{s}");
    // What is not secret is shown as it is.
    assert!(s.contains("AKIDEXAMPLE") && s.contains("db.example"), "{s}");
}
