//! Fault-suite fixture: plain hyper 1 HTTP/1 server whose answers depend only
//! on the request (no Date header, no randomness), so a test can compare them
//! byte for byte with and without the agent.
//!
//!   GET  /                 -> 200 "ok"
//!   POST /echo             -> 200 with the request body
//!   GET  /status/N         -> status N
//!   GET  /big              -> 200 with 100 000 bytes
//!   GET  /panic            -> the handler panics: the connection's task unwinds and the connection closes
//!   GET  /panic-caught     -> the handler panics inside catch_unwind: 500 "caught"
//!   GET  /panic-body       -> the response body panics when first polled
//!   GET  /slow?ms=N        -> 200 after N ms
//!   GET  /exit/N           -> 200 "bye", then the process exits with status N
//!   GET  /exec?service=S   -> 200 "exec", then a tokio worker thread exec's $FAULT_SERVER_EXEC
//!                             (arguments: $FAULT_SERVER_EXEC_ARGS, split on spaces) with
//!                             OTEL_SERVICE_NAME=S: same pid, new image (the fault suite's exec case)
//!
//! Request heads are limited to 8 KiB (hyper answers 431 beyond). Prints
//! `listening on 127.0.0.1:<port>`; PORT=0 picks a free port.
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;

static PANICS: AtomicU64 = AtomicU64::new(0);

type Resp = Response<BoxBody<Bytes, Infallible>>;

fn text(status: u16, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// A body that panics when hyper first polls it: the unwind goes through
/// hyper's dispatcher after the head was encoded.
struct PanickingBody;

impl Body for PanickingBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        PANICS.fetch_add(1, Ordering::Relaxed);
        panic!("fault-server: body panic");
    }
}

#[inline(never)]
fn blow_up(what: &str) -> u64 {
    PANICS.fetch_add(1, Ordering::Relaxed);
    panic!("fault-server: {what}");
}

async fn handle(req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    Ok(match (req.method().as_str(), path.as_str()) {
        ("GET", "/") => text(200, "ok"),
        ("POST", "/echo") => {
            let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            text(200, body)
        }
        ("GET", "/big") => text(200, vec![b'x'; 100_000]),
        ("GET", "/panic") => {
            blow_up("handler panic");
            unreachable!()
        }
        ("GET", "/panic-caught") => match catch_unwind(AssertUnwindSafe(|| blow_up("caught panic"))) {
            Ok(_) => text(200, "not reached"),
            Err(_) => text(500, "caught"),
        },
        ("GET", "/panic-body") => Response::builder().status(200).body(PanickingBody.boxed()).unwrap(),
        ("GET", "/slow") => {
            let ms = query.strip_prefix("ms=").and_then(|v| v.parse().ok()).unwrap_or(10);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(200, "slow")
        }
        ("GET", p) if p.starts_with("/status/") => match p[8..].parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok()) {
            Some(s) => text(s.as_u16(), format!("status {}", s.as_u16())),
            None => text(400, "bad status"),
        },
        ("GET", p) if p.starts_with("/exit/") => {
            let code: i32 = p[6..].parse().unwrap_or(1);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                eprintln!("fault-server: exiting with {code} after {} panics", PANICS.load(Ordering::Relaxed));
                std::process::exit(code);
            });
            text(200, "bye")
        }
        ("GET", "/exec") => match std::env::var_os("FAULT_SERVER_EXEC") {
            None => text(400, "FAULT_SERVER_EXEC is not set"),
            Some(prog) => {
                let service = query.strip_prefix("service=").unwrap_or("").to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let args = std::env::var("FAULT_SERVER_EXEC_ARGS").unwrap_or_default();
                    let mut cmd = std::process::Command::new(&prog);
                    cmd.args(args.split(' ').filter(|a| !a.is_empty()));
                    if !service.is_empty() {
                        cmd.env("OTEL_SERVICE_NAME", &service);
                    }
                    let err = std::os::unix::process::CommandExt::exec(&mut cmd);
                    eprintln!("fault-server: exec failed: {err}");
                    std::process::exit(99);
                });
                text(200, "exec")
            }
        },
        _ => text(404, "not found"),
    })
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .auto_date_header(false)
                .max_buf_size(8192)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
