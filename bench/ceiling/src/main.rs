//! The ceilings for `bench/run.py`, built from the same crates as jwtd:
//!
//! - `jwtd-bench-ceiling [PORT]`: a bare axum hello-world on 127.0.0.1 (port 0 picks a free one),
//!   what axum serves on this machine when a handler does nothing. Prints `listening on ADDR`.
//! - `jwtd-bench-ceiling argon2 SECONDS`: argon2id at jwtd's parameters (m=19 MiB, t=2, p=1) on
//!   one thread per core for SECONDS; prints `argon2id hashes/s N`, what sign-in can reach at most.

use std::io::Write;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};

/// jwtd's password hashing parameters (OWASP's argon2id minimum; `jwtd::password::Hasher`).
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("argon2") => {
            let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
            let rate = argon2_rate(Duration::from_secs(secs)).map_err(std::io::Error::other)?;
            writeln!(std::io::stdout(), "argon2id hashes/s {rate:.1}")
        }
        port => hello(port.and_then(|p| p.parse().ok()).unwrap_or(0)),
    }
}

#[tokio::main]
async fn hello(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    axum::serve(listener, app).await
}

/// Hashes per second over all cores, each core hashing in a loop for `length` in memory it
/// reuses (as jwtd's hash pool does).
fn argon2_rate(length: Duration) -> Result<f64, String> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let started = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let params = params.clone();
            std::thread::spawn(move || {
                let mut blocks = vec![argon2::Block::default(); params.block_count()];
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut out = [0u8; 32];
                let mut hashes = 0u64;
                while started.elapsed() < length {
                    if argon2
                        .hash_password_into_with_memory(
                            b"correct horse battery",
                            b"saltsaltsaltsalt",
                            &mut out,
                            &mut blocks,
                        )
                        .is_err()
                    {
                        break;
                    }
                    hashes += 1;
                }
                hashes
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().map_err(|_| "a hashing thread panicked".to_string())?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
