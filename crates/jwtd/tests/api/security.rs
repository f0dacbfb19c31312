//! Hardening that has no endpoint of its own: file permissions of the database, and what
//! start-up warns about.

use crate::helpers::spawn_app;

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_and_its_wal_and_shm_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    // A write, so the WAL and the shared-memory index exist.
    app.sign_up("ada").await;
    let db = app.db_path.clone();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{file}: {e}")).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, bound: std::time::Duration) -> std::time::Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut chunk = [0u8; 1024];
    let until_eof = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, until_eof).await.expect("the server closes the idle connection");
    started.elapsed()
}

#[tokio::test]
async fn idle_http2_and_http1_connections_are_closed_after_the_idle_timeout() {
    use tokio::io::AsyncWriteExt;
    let idle = std::time::Duration::from_millis(300);
    let app = crate::helpers::TestApp::builder()
        .limits(jwtd::http::Limits { idle_timeout: idle, ..jwtd::http::Limits::default() })
        .spawn()
        .await;
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then silence.
    let mut h2 = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let took = closed_within(&mut h2, std::time::Duration::from_secs(10)).await;
    assert!(took >= idle, "closed after {took:?}");
    // HTTP/1.1 keep-alive after one answer.
    let mut h1 = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let answer = crate::helpers::raw_exchange(&mut h1, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    closed_within(&mut h1, std::time::Duration::from_secs(10)).await;
}

/// Starts the `jwtd` binary with `env`, stops it once it listens, and answers what it logged.
async fn start_and_stop_log(env: &[(&str, String)]) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtd"));
    command.arg("serve").env_clear().env("JWTD_ADDR", "127.0.0.1:0").env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).unwrap();
    assert!(banner.starts_with("jwtd listening on "), "{banner}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let waited = tokio::task::spawn_blocking(move || {
        child.wait().unwrap();
        let mut log = String::new();
        child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
        log
    });
    tokio::time::timeout(std::time::Duration::from_secs(20), waited).await.unwrap().unwrap()
}

#[tokio::test]
async fn start_up_warns_when_the_signing_key_lives_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = ("JWTD_DATABASE_URL", format!("sqlite://{}", dir.path().join("jwtd.db").display()));
    let log = start_and_stop_log(std::slice::from_ref(&db)).await;
    assert!(log.contains("SIGNING_KEY unset: the signing key is kept in the database"), "{log}");

    let key = dir.path().join("key");
    std::fs::write(&key, format!("{}\n", crate::helpers::SIGNING_KEY)).unwrap();
    let log = start_and_stop_log(&[db, ("JWTD_SIGNING_KEY_FILE", key.display().to_string())]).await;
    assert!(!log.contains("SIGNING_KEY unset"), "{log}");
    assert!(!log.contains(crate::helpers::SIGNING_KEY), "{log}");
}
