//! Cross-origin access to `/api/v1/`: the storefront script runs on the shop's own origin
//! (a CDN, a custom domain, `<shop>.localhost`) and calls the API on another.
//!
//! Keys sent in `Authorization`, never cookies, authenticate every request, so opening the
//! API to any origin gives a page nothing it could not do with the key alone: answers carry
//! `Access-Control-Allow-Origin: *` and credentials are never allowed. Preflights are
//! answered here, before routing, without touching a database.

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Methods a cross-origin script may use.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// Request headers a cross-origin script may send.
const HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id";

/// The middleware: answers preflights of `/api/v1/` and marks its answers readable by any
/// origin. Other paths (the storefront origin, health, metrics) are left as they are.
pub async fn allow_any_origin(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/v1/") || !req.headers().contains_key(ORIGIN) {
        return next.run(req).await;
    }
    if req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return (
            StatusCode::NO_CONTENT,
            [
                (ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (ACCESS_CONTROL_ALLOW_METHODS, METHODS),
                (ACCESS_CONTROL_ALLOW_HEADERS, HEADERS),
                (ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/api/v1/carts", post(|| async { (StatusCode::CREATED, "{}") }))
            .fallback(|| async { "storefront" })
            .layer(axum::middleware::from_fn(allow_any_origin))
    }

    async fn send(req: axum::http::Request<Body>) -> Response {
        app().oneshot(req).await.expect("infallible")
    }

    #[tokio::test]
    async fn preflights_of_the_api_are_answered() {
        let res = send(
            axum::http::Request::options("/api/v1/carts")
                .header(ORIGIN, "http://shop.localhost:8080")
                .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let allowed = res.headers()[ACCESS_CONTROL_ALLOW_HEADERS].to_str().expect("ascii");
        for h in ["authorization", "content-type", "idempotency-key"] {
            assert!(allowed.contains(h), "`{h}` allowed in {allowed:?}");
        }
        assert!(
            res.headers()[ACCESS_CONTROL_ALLOW_METHODS].to_str().expect("ascii").contains("PATCH")
        );
    }

    #[tokio::test]
    async fn api_answers_are_readable_cross_origin_and_others_untouched() {
        let api = send(
            axum::http::Request::post("/api/v1/carts")
                .header(ORIGIN, "https://shop.example.com")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(api.status(), StatusCode::CREATED);
        assert_eq!(api.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let page = send(
            axum::http::Request::get("/products/x/")
                .header(ORIGIN, "https://other.example.com")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert!(page.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let same_origin =
            send(axum::http::Request::post("/api/v1/carts").body(Body::empty()).expect("request"))
                .await;
        assert!(same_origin.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}
