//! Fixture: an axum 0.8 service that calls the tonic-server fixture's
//! `shop.v1.Catalog` with a tonic 0.14 client (tonic's Channel).
//!
//!   GET /grpc?target=http://127.0.0.1:P&method=get|list&id=I&count=C&fail=F&n=N&mode=async|spawn
//!       makes N calls (async: concurrently, from the handler's task; spawn:
//!       each in a new tokio task) and answers one line per call: the gRPC
//!       code's number (list: `<code> <messages received>`).
//!       get:  GetProduct{id}          (unary; id < 0 -> the server fails with code -id)
//!       list: ListProducts{count, fail_code} (server streaming)
//!   GET /three?b=http://127.0.0.1:P/path&c=http://127.0.0.1:Q&id=I&pad=N
//!       the three-services test's A: one reqwest GET to `b`, then one
//!       GetProduct{id} to `c` (pad > 0: the request carries N extra bytes in
//!       field 3, unknown to the server, for the large-body check), from the
//!       handler's task; answers "<b's status> <gRPC code>".
//!   GET /       -> 200 "ok"
//!
//! One Channel per target, made lazily and kept (one HTTP/2 connection).
//! Listens on 127.0.0.1:$PORT (0 = any free port), prints `listening on <addr>`.
use axum::{extract::Query, routing::get, Router};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tonic::transport::{Channel, Endpoint};
// tonic 0.14 moved the prost codec into tonic-prost (the tonic012-client
// and tonic013-client fixtures build this source against tonic 0.12/0.13).
#[cfg(feature = "prost-in-tonic")]
use tonic::codec::ProstCodec;
#[cfg(not(feature = "prost-in-tonic"))]
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetProductRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// GetProductRequest with an extra field the server does not know (skipped by prost).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PaddedGetProductRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub pad: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListProductsRequest {
    #[prost(int32, tag = "1")]
    pub count: i32,
    #[prost(int32, tag = "2")]
    pub fail_code: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Product {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(string, tag = "2")]
    pub name: String,
}

fn channel(target: &str) -> Result<Channel, String> {
    static CHANNELS: OnceLock<Mutex<HashMap<String, Channel>>> = OnceLock::new();
    let mut m = CHANNELS.get_or_init(Default::default).lock().unwrap();
    if let Some(c) = m.get(target) {
        return Ok(c.clone());
    }
    let c = Endpoint::from_shared(target.to_string()).map_err(|e| e.to_string())?.connect_lazy();
    m.insert(target.to_string(), c.clone());
    Ok(c)
}

/// What tonic-build's generated client does for a unary call.
async fn get_product(ch: Channel, id: i64) -> String {
    let mut grpc = tonic::client::Grpc::new(ch);
    if let Err(e) = grpc.ready().await {
        return format!("{} not ready: {e}", tonic::Code::Unavailable as i32);
    }
    let path = http::uri::PathAndQuery::from_static("/shop.v1.Catalog/GetProduct");
    let codec = ProstCodec::<GetProductRequest, Product>::default();
    match grpc.unary(tonic::Request::new(GetProductRequest { id }), path, codec).await {
        Ok(_) => "0".to_string(),
        Err(s) => (s.code() as i32).to_string(),
    }
}

/// A server-streaming call, read to its end.
async fn list_products(ch: Channel, count: i32, fail_code: i32) -> String {
    let mut grpc = tonic::client::Grpc::new(ch);
    if let Err(e) = grpc.ready().await {
        return format!("{} not ready: {e}", tonic::Code::Unavailable as i32);
    }
    let path = http::uri::PathAndQuery::from_static("/shop.v1.Catalog/ListProducts");
    let codec = ProstCodec::<ListProductsRequest, Product>::default();
    let mut stream = match grpc.server_streaming(tonic::Request::new(ListProductsRequest { count, fail_code }), path, codec).await {
        Ok(r) => r.into_inner(),
        Err(s) => return format!("{} 0", s.code() as i32),
    };
    let mut n = 0;
    loop {
        match stream.message().await {
            Ok(Some(_)) => n += 1,
            Ok(None) => return format!("0 {n}"),
            Err(s) => return format!("{} {n}", s.code() as i32),
        }
    }
}

/// GetProduct with `pad` bytes of the pattern (i * 7 + 3) % 251 in field 3.
async fn get_product_padded(ch: Channel, id: i64, pad: usize) -> String {
    let mut grpc = tonic::client::Grpc::new(ch);
    if let Err(e) = grpc.ready().await {
        return format!("{} not ready: {e}", tonic::Code::Unavailable as i32);
    }
    let path = http::uri::PathAndQuery::from_static("/shop.v1.Catalog/GetProduct");
    let codec = ProstCodec::<PaddedGetProductRequest, Product>::default();
    let pad: Vec<u8> = (0..pad).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    match grpc.unary(tonic::Request::new(PaddedGetProductRequest { id, pad }), path, codec).await {
        Ok(_) => "0".to_string(),
        Err(s) => (s.code() as i32).to_string(),
    }
}

fn http_client() -> reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(reqwest::Client::new).clone()
}

async fn three(Query(q): Query<HashMap<String, String>>) -> String {
    let b = q.get("b").cloned().unwrap_or_default();
    let c = q.get("c").cloned().unwrap_or_default();
    let id: i64 = q.get("id").and_then(|v| v.parse().ok()).unwrap_or(1);
    let pad: usize = q.get("pad").and_then(|v| v.parse().ok()).unwrap_or(0);
    let b_status = match http_client().get(&b).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s.to_string()
        }
        Err(e) => format!("error {e}"),
    };
    let code = match channel(&c) {
        Ok(ch) if pad > 0 => get_product_padded(ch, id, pad).await,
        Ok(ch) => get_product(ch, id).await,
        Err(e) => format!("error target {e}"),
    };
    format!("{b_status} {code}\n")
}

async fn one(target: String, method: String, id: i64, count: i32, fail: i32) -> String {
    let ch = match channel(&target) {
        Ok(c) => c,
        Err(e) => return format!("error target {e}"),
    };
    match method.as_str() {
        "list" => list_products(ch, count, fail).await,
        _ => get_product(ch, id).await,
    }
}

async fn grpc_calls(Query(q): Query<HashMap<String, String>>) -> String {
    let target = q.get("target").cloned().unwrap_or_default();
    let method = q.get("method").cloned().unwrap_or_else(|| "get".to_string());
    let n: usize = q.get("n").and_then(|v| v.parse().ok()).unwrap_or(1);
    let id: i64 = q.get("id").and_then(|v| v.parse().ok()).unwrap_or(1);
    let count: i32 = q.get("count").and_then(|v| v.parse().ok()).unwrap_or(2);
    let fail: i32 = q.get("fail").and_then(|v| v.parse().ok()).unwrap_or(0);
    let lines: Vec<String> = match q.get("mode").map(String::as_str).unwrap_or("async") {
        "spawn" => {
            let hs: Vec<_> = (0..n).map(|_| tokio::spawn(one(target.clone(), method.clone(), id, count, fail))).collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.expect("task"));
            }
            out
        }
        _ => futures_util::future::join_all((0..n).map(|_| one(target.clone(), method.clone(), id, count, fail))).await,
    };
    let mut body = lines.join("\n");
    body.push('\n');
    body
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let app = Router::new().route("/", get(|| async { "ok" })).route("/grpc", get(grpc_calls)).route("/three", get(three));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.expect("serve");
}
