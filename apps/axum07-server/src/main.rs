//! Fixture: axum 0.7 (hyper 1, h2 0.4), HTTP/1.1 and h2c on one port.
//!
//! Routes (axum 0.7 path syntax):
//!   GET /users/:id            -> 200
//!   GET /api/v1/users/:uid    -> 200 (two nested routers)
//!   GET /fail                 -> 500
//!   anything else             -> 404
//!
//! Prints `listening on 127.0.0.1:<port>`.
use axum::{extract::Path, http::StatusCode, routing::get, Router};

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn api_user(Path(uid): Path<String>) -> String {
    format!("api user {uid}")
}

async fn fail() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "something broke")
}

#[tokio::main]
async fn main() {
    let v1 = Router::new().route("/users/:uid", get(api_user));
    let app = Router::new()
        .route("/users/:id", get(user))
        .nest("/api", Router::new().nest("/v1", v1))
        .route("/fail", get(fail));
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
