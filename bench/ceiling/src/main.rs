//! The hello-world ceiling for `bench/run.py`: what axum on this machine serves when a handler
//! does nothing. Binds 127.0.0.1 on the port given as the first argument (0 picks a free one) and
//! prints `listening on ADDR` once it accepts.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    axum::serve(listener, app).await
}
