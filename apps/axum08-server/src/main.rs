//! Fixture: axum 0.8 on hyper 1 / h2 0.4, served over HTTP/1.1 and h2c
//! (prior knowledge) on one port, and over TLS (rustls, ALPN h2 and
//! http/1.1) on a second port when TLS_CERT and TLS_KEY name PEM files.
//!
//! Routes:
//!   GET  /                      -> 200 "hello"
//!   GET  /users/{id}            -> 200
//!   GET  /api/v1/users/{uid}    -> 200 (two nested routers)
//!   GET  /fail                  -> 500
//!   GET  /status/{code}         -> that status
//!   GET  /slow?ms=N             -> 200 after an async sleep
//!   POST /echo                  -> 200 with the request body
//!   GET  /bench/trivial         -> 200 "ok"
//!   anything else               -> 404 (no route matched)
//!
//! Prints `tls port 127.0.0.1:<port>` (with TLS) and then
//! `listening on 127.0.0.1:<port>` once both listeners are bound.
use axum::{
    extract::{Path, Query},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

async fn root() -> &'static str {
    "hello"
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn api_user(Path(uid): Path<String>) -> String {
    format!("api user {uid}")
}

async fn fail() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "something broke")
}

async fn status(Path(code): Path<u16>) -> (StatusCode, String) {
    let s = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (s, format!("status {code}"))
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

fn app() -> Router {
    let v1 = Router::new().route("/users/{uid}", get(api_user));
    Router::new()
        .route("/", get(root))
        .route("/users/{id}", get(user))
        .nest("/api", Router::new().nest("/v1", v1))
        .route("/fail", get(fail))
        .route("/status/{code}", get(status))
        .route("/slow", get(slow))
        .route("/echo", post(echo))
        .route("/bench/trivial", get(trivial))
}

fn tls_config(cert: &str, key: &str) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("read TLS_CERT")
        .collect::<Result<_, _>>()
        .expect("parse TLS_CERT");
    let key = PrivateKeyDer::from_pem_file(key).expect("read TLS_KEY");
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg
}

/// Each TLS connection gets its own task, which does the handshake and then
/// serves the connection (HTTP/1.1 or HTTP/2, as ALPN and the preface say).
async fn serve_tls(listener: tokio::net::TcpListener, cfg: rustls::ServerConfig, app: Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let acceptor = acceptor.clone();
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await;
        });
    }
}

#[tokio::main]
async fn main() {
    let app = app();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        let tls_port: u16 = std::env::var("TLS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
        let l = tokio::net::TcpListener::bind(("127.0.0.1", tls_port)).await.expect("bind tls");
        println!("tls port {}", l.local_addr().unwrap());
        tokio::spawn(serve_tls(l, tls_config(&cert, &key), app.clone()));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    // axum::serve speaks HTTP/1.1 and, with the http2 feature, h2c with prior knowledge.
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
