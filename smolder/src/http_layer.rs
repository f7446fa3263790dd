//! The middleware of the API and UI listener, in one place: every route
//! (SQL, SLOs, alerting, tokens, the audit log, the UI, operations) gets the
//! same stack.
//!
//! Order, outermost first — a request passes down the list, its response
//! back up:
//! 1. request id: `x-request-id` from the client, or a new one; echoed in
//!    the response, so a user's report finds the log lines;
//! 2. tracing: one span per request with its id, method and path;
//! 3. panic → 500: a handler that panics answers a JSON 500, is logged and
//!    counted in `smolder_task_panics_total{task="http_handler"}`, and the
//!    connection and process go on;
//! 4. timeout: a request that takes longer is answered 503 (queries have
//!    their own, shorter timeout, so this catches everything else);
//! 5. concurrency: requests beyond the limit wait for a slot (under the
//!    timeout above), so a flood cannot start unbounded work;
//! 6. body limit: a body longer than the limit is refused with 413 before it
//!    is read (by its `Content-Length`) or as soon as it passes the limit.
//!
//! Between the JSON errors and the panic layer, the browser guard
//! (browser.rs) refuses foreign `Host` names and cross-origin state changes,
//! then authentication (auth/mod.rs) asks for a token with the route's scope
//! and the audit log (audit.rs) records every change that succeeded;
//! CORS, when configured, sits right below the request id.
//!
//! Between tracing and the panic layer, [`json_errors`] gives the error
//! answers of the layers below (timeout, body limit) and of the router (no
//! such route, wrong method) under `/api/` and `/-/` the JSON shape of every
//! API error (smolder_common::http::ApiError): `{"error", "code"}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use axum::response::IntoResponse as _;
use smolder_common::http::{ApiError, ErrorCode};

use crate::audit::{AuditLog, record_changes};
use crate::auth::{Auth, api_guard};
use crate::browser::{BrowserPolicy, guard};
use crate::supervise::Panics;

/// Limits of the API listener's requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Time a request may take, body included.
    pub(crate) timeout: Duration,
    /// Bytes of a request body.
    pub(crate) max_body_bytes: usize,
    /// Requests handled at once.
    pub(crate) concurrency: usize,
}

/// Request ids: the process's start time and a counter, unique across
/// restarts and cheap.
#[derive(Clone)]
struct Ids(Arc<(u64, AtomicU64)>);

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.0.1.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:x}-{n}", self.0.0))
            .ok()
            .map(RequestId::new)
    }
}

/// Error answers under `/api/` and `/-/` that are not JSON yet (from a
/// layer or the router) in the shape of [`ApiError`].
async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/-/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // These answers are a line of text at most.
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut answer = ApiError::new(ErrorCode::of_status(status), message)
        .with_status(status)
        .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Who may do what, and the record of what they did.
pub(crate) struct Guards {
    /// Names and origins browsers may use (browser.rs).
    pub(crate) browser: Arc<BrowserPolicy>,
    /// Tokens (auth/mod.rs).
    pub(crate) auth: Arc<Auth>,
    /// The audit log of changes (audit.rs).
    pub(crate) audit: Arc<AuditLog>,
}

/// `router` with the stack described above.
pub(crate) fn layered(
    router: Router,
    limits: HttpLimits,
    guards: Guards,
    panics: Arc<Panics>,
) -> Router {
    let Guards {
        browser,
        auth,
        audit,
    } = guards;
    let cors = (!browser.cors_origins().is_empty()).then(|| {
        let origins: Vec<HeaderValue> = browser
            .cors_origins()
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
                axum::http::Method::DELETE,
            ])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    });
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ids = Ids(Arc::new((started, AtomicU64::new(0))));
    let on_panic = move |payload: Box<dyn std::any::Any + Send>| {
        panics.record(
            "http_handler",
            &smolder_query::executor::panic_message(payload.as_ref()),
        );
        let mut response = Response::new(axum::body::Body::from(
            r#"{"error":"internal error; see the server log","code":"internal"}"#,
        ));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    // The body limit is innermost, applied on its own so that its response
    // body becomes axum's again for the layers above.
    let router = router.layer(RequestBodyLimitLayer::new(limits.max_body_bytes));
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(ids))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::debug_span!("request", id, method = %request.method(), path = request.uri().path())
                }),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .option_layer(cors)
            .layer(axum::middleware::from_fn(json_errors))
            .layer(axum::middleware::from_fn_with_state(browser, guard))
            .layer(axum::middleware::from_fn_with_state(auth, api_guard))
            .layer(axum::middleware::from_fn_with_state(audit, record_changes))
            .layer(CatchPanicLayer::custom(on_panic))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.timeout,
            ))
            .layer(ConcurrencyLimitLayer::new(limits.concurrency.max(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    /// Authentication off, as on a loopback-only server.
    fn open_guards() -> Guards {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::auth::TokenStore::open(dir.path()).unwrap();
        let audit = AuditLog::open(dir.path()).unwrap();
        std::mem::forget(dir);
        Guards {
            browser: Arc::new(BrowserPolicy::default()),
            auth: Arc::new(Auth::new(Arc::new(store), false, Duration::from_secs(60))),
            audit: Arc::new(audit),
        }
    }

    fn app() -> (Router, Arc<Panics>) {
        let panics = Arc::new(Panics::default());
        let router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("a handler bug");
                    }
                    "unreachable"
                }),
            )
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            );
        let limits = HttpLimits {
            timeout: Duration::from_secs(5),
            max_body_bytes: 100,
            concurrency: 4,
        };
        (
            layered(router, limits, open_guards(), Arc::clone(&panics)),
            panics,
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_is_counted() {
        let (app, panics) = app();
        let request = Request::get("/boom")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(panics.get("http_handler"), 1);
        // The router still serves.
        let request = Request::post("/echo")
            .body(axum::body::Body::from("hi"))
            .unwrap();
        assert_eq!(app.oneshot(request).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_413() {
        let (app, _) = app();
        let request = Request::post("/echo")
            .body(axum::body::Body::from(vec![b'x'; 101]))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    async fn json_body(response: Response<axum::body::Body>) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_of_layers_and_the_router_under_api_are_json_with_a_code() {
        let panics = Arc::new(Panics::default());
        let router = Router::new().route("/api/v1/echo", post(|body: String| async move { body }));
        let limits = HttpLimits {
            timeout: Duration::from_secs(5),
            max_body_bytes: 100,
            concurrency: 4,
        };
        let app = layered(router, limits, open_guards(), panics);
        let request = Request::post("/api/v1/echo")
            .body(axum::body::Body::from(vec![b'x'; 101]))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(json_body(response).await["code"], "too_large");
        let request = Request::get("/api/v1/nothing")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = json_body(response).await;
        assert_eq!(
            (body["code"].as_str(), body["error"].as_str()),
            (Some("not_found"), Some("not found"))
        );
        let request = Request::get("/api/v1/echo")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json_body(response).await["code"], "invalid_argument");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_timeout_answers_503() {
        let (app, _) = app();
        let request = Request::get("/slow")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_client_request_id_is_kept() {
        let (app, _) = app();
        let request = Request::post("/echo")
            .header("x-request-id", "abc-123")
            .body(axum::body::Body::from("hi"))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-123");
    }
}
