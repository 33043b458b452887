//! Fixture: an axum 0.8 service with manual spans made by the OpenTelemetry
//! Rust SDK.
//!
//!   GET /orders/{id}   manual span `load_order` (a root span as far as the
//!                      SDK knows) -> a reqwest GET of $INVENTORY_URL inside
//!                      it -> a nested manual span `price_order`; answers
//!                      "order <id>: <inventory status>"
//!   GET /plain         a manual root span `plain_work`, no outgoing call
//!   GET /stock         the reqwest GET of $INVENTORY_URL with no manual span
//!   GET /              200 "ok" (no manual span)
//!
//! The SDK exports with its batch processor over OTLP/HTTP protobuf to
//! OTEL_EXPORTER_OTLP_ENDPOINT (read by opentelemetry-otlp itself);
//! OTEL_BSP_SCHEDULE_DELAY sets how often. SIGTERM/SIGINT: the provider is
//! shut down (what is left is exported) before the process exits.
//! Listens on 127.0.0.1:$PORT (0 = any free port), prints `listening on <addr>`.
use axum::{extract::Path, routing::get, Router};
use opentelemetry::trace::{FutureExt, Span, TraceContextExt, Tracer};
use opentelemetry::{global, Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::sync::OnceLock;

fn http() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::Client::builder().build().expect("client"))
}

async fn order(Path(id): Path<String>) -> String {
    let tracer = global::tracer("otel-sdk-service");
    let mut span = tracer.start("load_order");
    span.set_attribute(KeyValue::new("order.id", id.clone()));
    let cx = Context::current_with_span(span);
    let inventory = std::env::var("INVENTORY_URL").unwrap_or_else(|_| "http://127.0.0.1:9/".into());
    let status = async {
        let status = match http().get(&inventory).send().await {
            Ok(r) => {
                let s = r.status().as_u16().to_string();
                let _ = r.bytes().await;
                s
            }
            Err(_) => "error".to_string(),
        };
        // Nested: the SDK's current context (load_order) is its parent.
        let mut price = global::tracer("otel-sdk-service").start("price_order");
        price.set_attribute(KeyValue::new("order.id", id.clone()));
        price.end();
        status
    }
    .with_context(cx.clone())
    .await;
    cx.span().end();
    format!("order {id}: {status}\n")
}

/// The same outgoing call with no manual span around it: the agent's CLIENT
/// span stays the child of its SERVER span.
async fn stock() -> String {
    let inventory = std::env::var("INVENTORY_URL").unwrap_or_else(|_| "http://127.0.0.1:9/".into());
    let status = match http().get(&inventory).send().await {
        Ok(r) => {
            let s = r.status().as_u16().to_string();
            let _ = r.bytes().await;
            s
        }
        Err(_) => "error".to_string(),
    };
    format!("stock: {status}\n")
}

async fn plain() -> &'static str {
    let mut span = global::tracer("otel-sdk-service").start("plain_work");
    span.end();
    "plain\n"
}

fn main() {
    // reqwest 0.13 is shared with the reqwest13-client fixture, whose
    // `rustls-no-provider` feature cargo unifies into this build too: without
    // a process-wide crypto provider reqwest's Client panics when built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .expect("otlp exporter");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("otel-sdk-service").build())
        .build();
    global::set_tracer_provider(provider.clone());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
        println!("listening on {}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/plain", get(plain))
            .route("/stock", get(stock))
            .route("/orders/{id}", get(order));
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        };
        axum::serve(listener, app).with_graceful_shutdown(stop).await.expect("serve");
    });
    drop(rt);
    let _ = provider.shutdown();
}
