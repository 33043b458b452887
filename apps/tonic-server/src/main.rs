//! Fixture: a tonic 0.14 gRPC server (hyper 1, h2 0.4) for the service
//!
//!   package shop.v1;
//!   service Catalog {
//!     rpc GetProduct(GetProductRequest) returns (Product);                 // unary
//!     rpc ListProducts(ListProductsRequest) returns (stream Product);      // server streaming
//!   }
//!   message GetProductRequest   { int64 id = 1; }
//!   message ListProductsRequest { int32 count = 1; int32 fail_code = 2; }
//!   message Product             { int64 id = 1; string name = 2; }
//!
//! written by hand (what tonic-build generates, minus the client), so the
//! build needs no protoc. Behaviour:
//!   GetProduct:   id >= 0 -> OK; id < 0 -> the status whose code is -id,
//!                 sent before any message (a trailers-only response).
//!   ListProducts: `count` products, then OK, or the status `fail_code` in
//!                 the trailers; with count = 0 and fail_code != 0 the
//!                 handler fails at once (trailers-only).
//!
//! Listens on 127.0.0.1:$PORT (0 = any free port) and prints
//! `listening on 127.0.0.1:<port>`.
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_stream::Stream;
use tonic::codegen::{BoxFuture, StdError};
use tonic::{Code, Request, Response, Status};

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetProductRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
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

fn product(id: i64) -> Product {
    Product { id, name: format!("product {id}") }
}

async fn get_product(req: Request<GetProductRequest>) -> Result<Response<Product>, Status> {
    let id = req.into_inner().id;
    if id < 0 {
        return Err(Status::new(Code::from_i32((-id) as i32), format!("product {id} failed")));
    }
    Ok(Response::new(product(id)))
}

type ProductStream = Pin<Box<dyn Stream<Item = Result<Product, Status>> + Send + 'static>>;

async fn list_products(req: Request<ListProductsRequest>) -> Result<Response<ProductStream>, Status> {
    let r = req.into_inner();
    if r.count == 0 && r.fail_code != 0 {
        return Err(Status::new(Code::from_i32(r.fail_code), "cannot list"));
    }
    let mut items: Vec<Result<Product, Status>> = (0..r.count.max(0) as i64).map(|i| Ok(product(i))).collect();
    if r.fail_code != 0 {
        items.push(Err(Status::new(Code::from_i32(r.fail_code), "listing broke")));
    }
    Ok(Response::new(Box::pin(tokio_stream::iter(items)) as ProductStream))
}

/// The service, as tonic-build would generate it.
#[derive(Clone)]
pub struct CatalogServer;

impl tonic::server::NamedService for CatalogServer {
    const NAME: &'static str = "shop.v1.Catalog";
}

impl<B> tower_service::Service<http::Request<B>> for CatalogServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/shop.v1.Catalog/GetProduct" => {
                struct GetProductSvc;
                impl tonic::server::UnaryService<GetProductRequest> for GetProductSvc {
                    type Response = Product;
                    type Future = BoxFuture<Response<Product>, Status>;
                    fn call(&mut self, request: Request<GetProductRequest>) -> Self::Future {
                        Box::pin(get_product(request))
                    }
                }
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    Ok(grpc.unary(GetProductSvc, req).await)
                })
            }
            "/shop.v1.Catalog/ListProducts" => {
                struct ListProductsSvc;
                impl tonic::server::ServerStreamingService<ListProductsRequest> for ListProductsSvc {
                    type Response = Product;
                    type ResponseStream = ProductStream;
                    type Future = BoxFuture<Response<ProductStream>, Status>;
                    fn call(&mut self, request: Request<ListProductsRequest>) -> Self::Future {
                        Box::pin(list_products(request))
                    }
                }
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    Ok(grpc.server_streaming(ListProductsSvc, req).await)
                })
            }
            _ => Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(Status::GRPC_STATUS, (Code::Unimplemented as i32).into());
                headers.insert(http::header::CONTENT_TYPE, tonic::metadata::GRPC_CONTENT_TYPE);
                Ok(response)
            }),
        }
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(50051);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    tonic::transport::Server::builder()
        .add_service(CatalogServer)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
