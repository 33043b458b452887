//! Demo and fixture service: axum 0.8 on hyper 1.
//!
//! Routes:
//!   GET  /                -> 200 "hello"
//!   GET  /users/{id}      -> 200
//!   GET  /fail            -> 500
//!   GET  /slow?ms=N       -> 200 after an async sleep (the task yields, may change thread)
//!   POST /echo            -> 200 with the request body
//!   GET  /bench/trivial   -> 200 "ok"
//!   GET  /bench/cpu       -> 200 after about 200 µs of CPU work
//!   anything else         -> 404 (axum's default fallback)
//!
//! Listens on 127.0.0.1:$PORT (PORT=0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` once ready, so tests can find it.
use axum::{
    extract::{Path, Query},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn root() -> &'static str {
    "hello"
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn fail() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "something broke")
}

async fn slow(Query(q): Query<HashMap<String, String>>) -> &'static str {
    let ms = q.get("ms").and_then(|v| v.parse().ok()).unwrap_or(10);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

async fn echo(body: String) -> String {
    body
}

async fn trivial() -> &'static str {
    "ok"
}

/// About 200 µs of real CPU work (a hash chain), checked against the clock so the
/// amount does not depend on the machine's speed.
#[inline(never)]
fn burn_cpu(budget: Duration) -> u64 {
    let start = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while start.elapsed() < budget {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    x
}

async fn cpu() -> String {
    let v = burn_cpu(Duration::from_micros(200));
    format!("{}", v & 0xff)
}

#[tokio::main]
async fn main() {
    let app = Router::new()
        .route("/", get(root))
        .route("/users/{id}", get(user))
        .route("/fail", get(fail))
        .route("/slow", get(slow))
        .route("/echo", post(echo))
        .route("/bench/trivial", get(trivial))
        .route("/bench/cpu", get(cpu));
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
