//! Fixture: an axum 0.8 service whose handlers call a downstream HTTP server
//! through each in-process hand-off the agent must follow (issue 8).
//!
//!   GET /fan/{id}?down=http://H:P
//!       makes 7 calls to {down}/{pattern}/{id}, one after the other:
//!         direct    in the handler's task
//!         spawn     in a tokio::spawn'ed task
//!         spawn2    in a task spawned by a spawned task
//!         joinA     \ tokio::join! of two calls in the handler's task
//!         joinB     /
//!         blocking  reqwest::blocking inside spawn_blocking
//!         thread    reqwest::blocking on a std::thread spawned by the handler
//!       and answers one line per call: `pattern status`.
//!   GET /pair/{id}?down=http://H:P
//!       two calls joined in the handler's task: {down}/pairA/{id}, {down}/pairB/{id}.
//!   GET /pool/{id}?down=http://H:P
//!       one reqwest::blocking call to {down}/pool/{id}, made by a worker
//!       std::thread that the first /pool request starts (inside its
//!       handler) and that serves every later /pool request: a thread that
//!       outlives the handler that made it.
//!   GET /spawns/{id}
//!       no calls: one tokio::spawn, one spawn inside a spawn, one
//!       spawn_blocking (exactly 3 + 1 spawns, for counting probe hits).
//!   GET /       -> 200 "ok"
//!
//! `down` defaults to $FANOUT_DOWNSTREAM.
//!
//! The id makes every downstream URL name the request it was made for, so a
//! test can check each client span's parent against that request's server
//! span. One reqwest::Client and one reqwest::blocking::Client serve every
//! request (as a real service would).
//!
//! Runtime: FANOUT_RUNTIME=current -> one current-thread runtime; otherwise a
//! multi-thread runtime with FANOUT_WORKERS workers (default 4).
//! Listens on 127.0.0.1:$PORT (0 = any free port), prints `listening on <addr>`.
use axum::{
    extract::{Path, Query},
    routing::get,
    Router,
};
use std::collections::HashMap;
use std::sync::OnceLock;

static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
static BLOCKING: OnceLock<reqwest::blocking::Client> = OnceLock::new();
type Job = (String, tokio::sync::oneshot::Sender<String>);
static POOL: OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();

async fn one(url: String) -> String {
    match CLIENT.get().expect("client").get(&url).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s.to_string()
        }
        Err(_) => "error".to_string(),
    }
}

fn one_blocking(url: &str) -> String {
    match BLOCKING.get().expect("blocking client").get(url).send() {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes();
            s.to_string()
        }
        Err(_) => "error".to_string(),
    }
}

fn down(q: &HashMap<String, String>) -> String {
    q.get("down")
        .cloned()
        .or_else(|| std::env::var("FANOUT_DOWNSTREAM").ok())
        .unwrap_or_else(|| "http://127.0.0.1:1".to_string())
}

async fn fan(Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> String {
    let base = down(&q);
    let u = |p: &str| format!("{base}/{p}/{id}");
    let mut out = Vec::new();
    out.push(("direct", one(u("direct")).await));
    let spawned = tokio::spawn(one(u("spawn")));
    out.push(("spawn", spawned.await.unwrap_or_else(|_| "panic".into())));
    let url2 = u("spawn2");
    let twice = tokio::spawn(async move { tokio::spawn(one(url2)).await.unwrap_or_else(|_| "panic".into()) });
    out.push(("spawn2", twice.await.unwrap_or_else(|_| "panic".into())));
    let (a, b) = tokio::join!(one(u("joinA")), one(u("joinB")));
    out.push(("joinA", a));
    out.push(("joinB", b));
    let ub = u("blocking");
    let blk = tokio::task::spawn_blocking(move || one_blocking(&ub));
    out.push(("blocking", blk.await.unwrap_or_else(|_| "panic".into())));
    let ut = u("thread");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(one_blocking(&ut));
    });
    out.push(("thread", rx.await.unwrap_or_else(|_| "panic".into())));
    let mut s = out.iter().map(|(p, r)| format!("{p} {r}")).collect::<Vec<_>>().join("\n");
    s.push('\n');
    s
}

async fn pair(Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> String {
    let base = down(&q);
    let (a, b) = tokio::join!(one(format!("{base}/pairA/{id}")), one(format!("{base}/pairB/{id}")));
    format!("pairA {a}\npairB {b}\n")
}

async fn pool(Path(id): Path<String>, Query(q): Query<HashMap<String, String>>) -> String {
    let url = format!("{}/pool/{id}", down(&q));
    // Started by the first request, inside its handler; serves all later ones.
    let worker = POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (url, reply) in rx {
                let _ = reply.send(one_blocking(&url));
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = worker.lock().map(|w| w.send((url, tx)).is_ok()).unwrap_or(false);
    if !sent {
        return "pool error\n".to_string();
    }
    format!("pool {}\n", rx.await.unwrap_or_else(|_| "panic".into()))
}

async fn spawns(Path(_id): Path<String>) -> String {
    let a = tokio::spawn(async { 1 }).await.unwrap_or(0);
    let b = tokio::spawn(async { tokio::spawn(async { 1 }).await.unwrap_or(0) }).await.unwrap_or(0);
    let c = tokio::task::spawn_blocking(|| 1).await.unwrap_or(0);
    format!("{}\n", a + b + c)
}

async fn serve() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3003);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/fan/{id}", get(fan))
        .route("/pair/{id}", get(pair))
        .route("/pool/{id}", get(pool))
        .route("/spawns/{id}", get(spawns));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}

fn main() {
    CLIENT.set(reqwest::Client::builder().build().expect("client")).ok();
    // Built outside any runtime: it starts its own runtime thread.
    BLOCKING.set(reqwest::blocking::Client::builder().build().expect("blocking client")).ok();
    let current = std::env::var("FANOUT_RUNTIME").map(|v| v == "current").unwrap_or(false);
    let rt = if current {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        let workers = std::env::var("FANOUT_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
    }
    .expect("runtime");
    rt.block_on(serve());
}
