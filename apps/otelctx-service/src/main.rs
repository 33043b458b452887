//! Fixture: an axum 0.8 service that publishes the OpenTelemetry thread
//! context (OTEP 4947) with libotelctx, no OpenTelemetry SDK.
//!
//!   GET /call/{trace}/{span}  attaches a thread-context record with these ids
//!                             (32 / 16 hex digits) while it hands a reqwest GET
//!                             of $INVENTORY_URL to reqwest (the synchronous
//!                             `send()`), detaches it, then awaits the call;
//!                             answers "<status>"
//!   GET /stock                the same call with no record attached
//! Listens on 127.0.0.1:$PORT (0 = any free port), prints `listening on <addr>`.
use axum::{extract::Path, routing::get, Router};
use std::os::raw::c_void;
use std::sync::OnceLock;

extern "C" {
    fn otelctx_new(trace_id: *const u8, span_id: *const u8, trace_flags: u8, attrs: *const c_void, n: usize) -> *mut c_void;
    fn otelctx_attach(rec: *mut c_void) -> *mut c_void;
    fn otelctx_free(rec: *mut c_void);
}

fn http() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::Client::builder().build().expect("client"))
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N { return None; }
    let mut out = [0u8; N];
    for i in 0..N { out[i] = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?; }
    Some(out)
}

async fn status_of(fut: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>) -> String {
    match fut.await {
        Ok(r) => {
            let s = r.status().as_u16().to_string();
            let _ = r.bytes().await;
            s
        }
        Err(_) => "error".to_string(),
    }
}

async fn call(Path((trace, span)): Path<(String, String)>) -> String {
    let (Some(t), Some(s)) = (unhex::<16>(&trace), unhex::<8>(&span)) else { return "bad ids\n".into() };
    let inventory = std::env::var("INVENTORY_URL").unwrap_or_else(|_| "http://127.0.0.1:9/".into());
    // Attached only on this thread, only while reqwest takes the call.
    let fut = unsafe {
        let rec = otelctx_new(t.as_ptr(), s.as_ptr(), 1, std::ptr::null(), 0);
        let prev = otelctx_attach(rec);
        let fut = http().get(&inventory).send();
        let mine = otelctx_attach(prev);
        otelctx_free(mine);
        fut
    };
    format!("{}\n", status_of(fut).await)
}

async fn stock() -> String {
    let inventory = std::env::var("INVENTORY_URL").unwrap_or_else(|_| "http://127.0.0.1:9/".into());
    format!("{}\n", status_of(http().get(&inventory).send()).await)
}

fn main() {
    // See otel-sdk-service: the workspace unifies reqwest 0.13's rustls-no-provider feature into this build.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
        println!("listening on {}", listener.local_addr().unwrap());
        let app = Router::new().route("/call/{trace}/{span}", get(call)).route("/stock", get(stock));
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        };
        axum::serve(listener, app).with_graceful_shutdown(stop).await.expect("serve");
    });
}
