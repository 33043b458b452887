//! Fixture: an axum 0.8 service that calls out with reqwest (the version this
//! crate links; the source is shared by the reqwest 0.11/0.12/0.13 fixtures).
//!
//!   GET /call?url=U&n=N&mode=async|blocking|spawn&h2c=1&timeout_ms=T
//!       (async mode: &body=BYTES | &chunked=BYTES for a POST body, &own_tp=1 for an own traceparent)
//!       makes N calls to U (async: concurrently, from the handler's task;
//!       spawn: each in a new tokio task; blocking: one after the other with
//!       reqwest::blocking on a spawn_blocking thread; hyper: one after the
//!       other with hyper-util's legacy client directly, no reqwest, when built
//!       with the `hyper-direct` feature; &body=BYTES for a POST body) and answers one line per call: the
//!       status code, or `error <kind>`.
//!   GET /       -> 200 "ok"
//!
//! Listens on 127.0.0.1:$PORT (0 = any free port), prints `listening on <addr>`.
use axum::{extract::Query, routing::get, Router};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

fn client(h2c: bool) -> &'static reqwest::Client {
    static PLAIN: OnceLock<reqwest::Client> = OnceLock::new();
    static H2C: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if h2c { &H2C } else { &PLAIN };
    cell.get_or_init(|| {
        let b = reqwest::Client::builder().danger_accept_invalid_certs(true);
        let b = if h2c { b.http2_prior_knowledge() } else { b };
        b.build().expect("client")
    })
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request"
    };
    format!("error {kind}")
}

/// What a call sends (trace-context propagation tests): a POST body of
/// `body` bytes (Content-Length) or of `chunked` bytes in 3 chunks (chunked
/// transfer encoding), and a traceparent of the application's own.
#[derive(Clone, Default)]
struct Send {
    body: Option<usize>,
    chunked: Option<usize>,
    own_traceparent: bool,
}

/// Byte i of every test body: a pattern a receiver can recompute.
fn body_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

#[cfg(feature = "stream-body")]
fn chunked(rb: reqwest::RequestBuilder, n: usize) -> Option<reqwest::RequestBuilder> {
    let all = body_bytes(n);
    let third = n / 3;
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(all[..third].to_vec()), Ok(all[third..2 * third].to_vec()), Ok(all[2 * third..].to_vec())];
    Some(rb.body(reqwest::Body::wrap_stream(futures_util::stream::iter(parts))))
}

#[cfg(not(feature = "stream-body"))]
fn chunked(_rb: reqwest::RequestBuilder, _n: usize) -> Option<reqwest::RequestBuilder> {
    None
}

async fn one(url: String, h2c: bool, timeout: Option<Duration>) -> String {
    one_with(url, h2c, timeout, Send::default()).await
}

async fn one_with(url: String, h2c: bool, timeout: Option<Duration>, send: Send) -> String {
    let mut rb = if let Some(n) = send.body {
        client(h2c).post(&url).body(body_bytes(n))
    } else if let Some(n) = send.chunked {
        match chunked(client(h2c).post(&url), n) {
            Some(rb) => rb,
            None => return "error unsupported".to_string(),
        }
    } else {
        client(h2c).get(&url)
    };
    if send.own_traceparent {
        rb = rb.header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    }
    if let Some(t) = timeout {
        rb = rb.timeout(t);
    }
    match rb.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s.to_string()
        }
        Err(e) => describe(&e),
    }
}

fn blocking(url: &str, n: usize, timeout: Option<Duration>) -> Vec<String> {
    let mut b = reqwest::blocking::Client::builder().danger_accept_invalid_certs(true);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    let c = b.build().expect("blocking client");
    (0..n)
        .map(|_| match c.get(url).send() {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = r.bytes();
                s.to_string()
            }
            Err(e) => describe(&e),
        })
        .collect()
}

#[cfg(feature = "hyper-direct")]
async fn hyper_calls(url: &str, n: usize, body: Option<usize>) -> Vec<String> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    static CLIENT: OnceLock<Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Full<bytes::Bytes>>> = OnceLock::new();
    let c = CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http());
    let mut out = Vec::new();
    for _ in 0..n {
        let uri: hyper::Uri = match url.parse() {
            Ok(u) => u,
            Err(_) => { out.push("error uri".to_string()); continue; }
        };
        let res = match body {
            // A POST with a Content-Length body of the test pattern.
            Some(len) => {
                let req = hyper::Request::post(uri)
                    .body(http_body_util::Full::new(bytes::Bytes::from(body_bytes(len))))
                    .expect("request");
                c.request(req).await
            }
            None => c.get(uri).await,
        };
        match res {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = http_body_util::BodyExt::collect(r.into_body()).await;
                out.push(s.to_string());
            }
            Err(e) => out.push(if e.is_connect() { "error connect".to_string() } else { "error request".to_string() }),
        }
    }
    out
}

#[cfg(not(feature = "hyper-direct"))]
async fn hyper_calls(_url: &str, n: usize, _body: Option<usize>) -> Vec<String> {
    vec!["error unsupported".to_string(); n]
}

async fn call(Query(q): Query<HashMap<String, String>>) -> String {
    let url = q.get("url").cloned().unwrap_or_default();
    let n: usize = q.get("n").and_then(|v| v.parse().ok()).unwrap_or(1);
    let h2c = q.get("h2c").map(|v| v == "1").unwrap_or(false);
    let timeout = q.get("timeout_ms").and_then(|v| v.parse().ok()).map(Duration::from_millis);
    let lines: Vec<String> = match q.get("mode").map(String::as_str).unwrap_or("async") {
        "hyper" => hyper_calls(&url, n, q.get("body").and_then(|v| v.parse().ok())).await,
        "blocking" => tokio::task::spawn_blocking(move || blocking(&url, n, timeout)).await.expect("blocking calls"),
        "spawn" => {
            let hs: Vec<_> = (0..n).map(|_| tokio::spawn(one(url.clone(), h2c, timeout))).collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.expect("task"));
            }
            out
        }
        // Polled together inside the handler's task: one task, n calls in flight.
        _ => {
            let send = Send {
                body: q.get("body").and_then(|v| v.parse().ok()),
                chunked: q.get("chunked").and_then(|v| v.parse().ok()),
                own_traceparent: q.get("own_tp").map(|v| v == "1").unwrap_or(false),
            };
            futures_util::future::join_all((0..n).map(|_| one_with(url.clone(), h2c, timeout, send.clone()))).await
        }
    };
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

#[tokio::main]
async fn main() {
    // reqwest 0.13 without its default provider (aws-lc-rs): rustls' ring, installed once.
    #[cfg(feature = "ring-provider")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3002);
    let app = Router::new().route("/", get(|| async { "ok" })).route("/call", get(call));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}
