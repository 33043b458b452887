//! Plain hyper 0.14 HTTP/1 server, no framework: the fixture for hyper 0.14 support.
//!
//!   GET /      -> 200 "hello from hyper 0.14"
//!   GET /fail  -> 503
//!   other      -> 404
//!
//! Listens on 127.0.0.1:$PORT (0 = any free port) and prints `listening on <addr>`.
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server, StatusCode};
use std::convert::Infallible;

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/" => (StatusCode::OK, "hello from hyper 0.14"),
        "/fail" => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => (StatusCode::NOT_FOUND, "not found"),
    };
    Ok(Response::builder().status(status).body(Body::from(body)).unwrap())
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001);
    let addr = ([127, 0, 0, 1], port).into();
    let make = make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(handle)) });
    let server = Server::bind(&addr).serve(make);
    println!("listening on {}", server.local_addr());
    server.await.expect("serve");
}
