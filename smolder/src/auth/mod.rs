//! Authentication: who is calling, and whether they may.
//!
//! Every listener asks for a token when authentication is on (`[server]
//! auth`: `required`, or `auto` — the default — when any listener is not on
//! loopback; the demo and a loopback-only server need none): OTLP takes
//! `Authorization: Bearer <token>` over HTTP and the `authorization`
//! metadata over gRPC (what the Collector's `bearertokenauth` and
//! `OTEL_EXPORTER_OTLP_HEADERS` send) and needs the `ingest` scope; the API
//! needs `read` to read (a SQL query is a read), `write` to change SLOs,
//! silences or reload, and `admin` for tokens. `/healthz`, `/readyz` and the
//! UI's pages and assets are open (the pages' API calls are not). A missing
//! or bad token is 401 / `UNAUTHENTICATED`, a token without the scope 403 /
//! `PERMISSION_DENIED`.
//!
//! Tokens belong to a tenant, and every request carries its tenant (the
//! token's; the default one without authentication) to the handlers as a
//! [`Tenant`] extension: ingest stores the rows as that tenant's, queries
//! and searches read that tenant's only, and SLOs, alerts, silences,
//! notifications and scaling are the tenant's own (each tenant's SLOs run in
//! an engine of their own, `smolder_slo::tenants`). The server-wide routes
//! (`/metrics`, `/api/v1/status`, `/-/reload`) are the operator's: only the
//! default tenant's tokens reach them ([`default_tenant_only`]).

pub(crate) mod api;
pub(crate) mod cli;
pub(crate) mod oidc;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod signin;
mod tokens;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;
use smolder_common::clock::{Clock, SystemClock};
use smolder_common::http::{ApiError, ErrorCode};

pub(crate) use self::tokens::{Rejected, Scope, TokenInfo, TokenStore, parse_scopes};

/// `[server] auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMode {
    /// Required unless every listener is on loopback.
    #[default]
    Auto,
    /// Every request needs a token.
    Required,
    /// No tokens (say it explicitly; logged as a warning).
    Disabled,
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No valid token: 401 / UNAUTHENTICATED.
    Unauthenticated(Rejected),
    /// A valid token without the scope: 403 / PERMISSION_DENIED.
    Forbidden(Scope),
    /// A session cookie that is no longer a session: 401.
    Session(session::Ended),
    /// A state change with a session cookie but without its CSRF token: 403.
    Csrf,
}

impl Denied {
    fn message(self) -> String {
        match self {
            Self::Unauthenticated(r) => r.message().to_string(),
            Self::Forbidden(scope) => {
                format!("the token (or signed-in role) lacks the {scope} scope")
            }
            Self::Session(ended) => ended.message().to_string(),
            Self::Csrf => String::new(),
        }
    }

    fn http(self) -> Response {
        let (code, status) = match self {
            Self::Unauthenticated(_) | Self::Session(_) => {
                (ErrorCode::Unauthenticated, StatusCode::UNAUTHORIZED)
            }
            Self::Forbidden(_) => (ErrorCode::PermissionDenied, StatusCode::FORBIDDEN),
            Self::Csrf => return signin::csrf_refused(),
        };
        let mut response = ApiError::new(code, self.message())
            .with_status(status)
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }

    fn grpc(self) -> tonic::Status {
        match self {
            Self::Unauthenticated(_) | Self::Session(_) => {
                tonic::Status::unauthenticated(self.message())
            }
            Self::Forbidden(_) | Self::Csrf => tonic::Status::permission_denied(self.message()),
        }
    }
}

/// The tokens, the UI's sessions, and whether they are asked for.
pub(crate) struct Auth {
    required: bool,
    store: Arc<TokenStore>,
    sessions: session::Sessions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication over `store`; `required` says whether tokens are asked
    /// for (see [`AuthMode`]); the UI's sessions last `session_ttl`.
    pub(crate) fn new(store: Arc<TokenStore>, required: bool, session_ttl: Duration) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            required,
            sessions: session::Sessions::new(session_ttl, Arc::clone(&clock), Arc::clone(&store)),
            store,
            clock,
        }
    }

    /// Checks an API request for `scope`: its bearer token, or — without
    /// one — its session cookie, with the CSRF token for a state change.
    /// `Ok(None)` when authentication is off.
    pub(crate) fn check_api(
        &self,
        headers: &HeaderMap,
        method: &Method,
        scope: Scope,
    ) -> Result<Option<TokenInfo>, Denied> {
        if !self.required {
            return Ok(None);
        }
        let cookie = session::cookie_of(headers);
        let (false, Some(cookie)) = (headers.contains_key(header::AUTHORIZATION), cookie) else {
            return self.check(headers, scope);
        };
        let current = self.sessions.current(cookie).map_err(Denied::Session)?;
        let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if changes && !session::csrf_ok(headers, &current) {
            return Err(Denied::Csrf);
        }
        if current.principal.allows(scope) {
            Ok(Some(current.principal))
        } else {
            Err(Denied::Forbidden(scope))
        }
    }

    /// The token store.
    pub(crate) fn store(&self) -> &Arc<TokenStore> {
        &self.store
    }

    /// Checks a request's token for `scope`; `Ok(None)` when authentication
    /// is off.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        scope: Scope,
    ) -> Result<Option<TokenInfo>, Denied> {
        if !self.required {
            return Ok(None);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (kind, token) = v.trim().split_once(' ')?;
                kind.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(Denied::Unauthenticated(Rejected::Missing))?;
        let token = self
            .store
            .verify(presented, self.clock.now_ns())
            .map_err(Denied::Unauthenticated)?;
        if token.allows(scope) {
            Ok(Some(token))
        } else {
            Err(Denied::Forbidden(scope))
        }
    }
}

/// The scope a request to the API listener needs; `None` for the open
/// routes (health checks, the UI's pages and assets).
fn api_scope(method: &Method, path: &str) -> Option<Scope> {
    let api = path.starts_with("/api/") || path.starts_with("/-/") || path == "/metrics";
    if !api {
        return None;
    }
    if path == "/api/v1/tokens" || path.starts_with("/api/v1/tokens/") || path == "/api/v1/audit" {
        return Some(Scope::Admin);
    }
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Some(Scope::Read),
        // A query or a backtest changes nothing.
        Method::POST
            if matches!(
                path,
                "/api/v1/sql" | "/api/v1/slos/backtest" | "/api/v1/slos/validate"
            ) =>
        {
            Some(Scope::Read)
        }
        _ => Some(Scope::Write),
    }
}

/// The server's own routes — reloading its configuration, its metrics
/// (every tenant's figures, labelled) and its status — which are the
/// operator's: only the default tenant's tokens reach them.
fn default_tenant_only(path: &str) -> bool {
    path.starts_with("/-/") || path == "/metrics" || path == "/api/v1/status"
}

/// The tenant of a request with `token` (the default one without).
fn tenant_of(token: Option<&TokenInfo>) -> Tenant {
    token.map(|t| t.tenant.clone()).unwrap_or_default()
}

/// Middleware of the API listener: the token's scope for the route; the
/// token (when there is one) and its tenant go to the handlers as
/// extensions.
pub(crate) async fn api_guard(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(scope) = api_scope(request.method(), request.uri().path()) else {
        request.extensions_mut().insert(Tenant::default());
        return next.run(request).await;
    };
    // A chart link in a notification opens without a token (chat services
    // fetch the image with none); its handler checks the link's signature,
    // which names the tenant.
    if request.method() == Method::GET
        && smolder_alerting::chart::is_signed_chart_link(
            request.uri().path(),
            request.uri().query(),
        )
    {
        request.extensions_mut().insert(Tenant::default());
        return next.run(request).await;
    }
    match auth.check_api(request.headers(), request.method(), scope) {
        Ok(token) => {
            let tenant = tenant_of(token.as_ref());
            if !tenant.is_default() && default_tenant_only(request.uri().path()) {
                return ApiError::new(
                    ErrorCode::PermissionDenied,
                    "the server's own routes (/-/…, /metrics, /api/v1/status) are the \
                     operator's: only tokens of the default tenant reach them",
                )
                .with_status(StatusCode::FORBIDDEN)
                .into_response();
            }
            request.extensions_mut().insert(tenant);
            // Without authentication everyone is; with it, admin scopes.
            if token.as_ref().is_none_or(|t| t.allows(Scope::Admin)) {
                request
                    .extensions_mut()
                    .insert(smolder_common::tenant::Administrator);
            }
            let actor = token.as_ref().map_or("anonymous", |t| t.id.as_str());
            request
                .extensions_mut()
                .insert(smolder_common::tenant::Actor(actor.to_string()));
            if let Some(token) = token {
                request.extensions_mut().insert(token);
            }
            next.run(request).await
        }
        Err(denied) => denied.http(),
    }
}

/// Middleware of the OTLP/HTTP listener: the `ingest` scope; the exports
/// are stored as the token's tenant's.
pub(crate) async fn ingest_guard(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.check(request.headers(), Scope::Ingest) {
        Ok(token) => {
            request.extensions_mut().insert(tenant_of(token.as_ref()));
            next.run(request).await
        }
        Err(denied) => denied.http(),
    }
}

/// The OTLP/gRPC services behind the `ingest` scope: a call without a valid
/// token is answered `UNAUTHENTICATED` (`PERMISSION_DENIED` without the
/// scope) before its message is read.
#[derive(Clone)]
pub(crate) struct GrpcGuard<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S> GrpcGuard<S> {
    pub(crate) fn new(inner: S, auth: Arc<Auth>) -> Self {
        Self { inner, auth }
    }
}

impl<S, B> tower::Service<http::Request<B>> for GrpcGuard<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.auth.check(request.headers(), Scope::Ingest) {
            Ok(token) => {
                request.extensions_mut().insert(tenant_of(token.as_ref()));
                Box::pin(self.inner.call(request))
            }
            Err(denied) => {
                let response = denied.grpc().into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_scope_of_what_they_do() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(api_scope(&get, "/healthz"), None);
        assert_eq!(api_scope(&get, "/readyz"), None);
        assert_eq!(api_scope(&get, "/ui/app.js"), None);
        assert_eq!(api_scope(&get, "/slos/checkout"), None);
        assert_eq!(api_scope(&get, "/metrics"), Some(Scope::Read));
        assert_eq!(api_scope(&get, "/api/v1/slos"), Some(Scope::Read));
        assert_eq!(api_scope(&post, "/api/v1/sql"), Some(Scope::Read));
        assert_eq!(api_scope(&post, "/api/v1/silences"), Some(Scope::Write));
        assert_eq!(
            api_scope(&Method::PUT, "/api/v1/slos/x"),
            Some(Scope::Write)
        );
        assert_eq!(
            api_scope(&Method::DELETE, "/api/v1/slos/x"),
            Some(Scope::Write)
        );
        assert_eq!(api_scope(&post, "/-/reload"), Some(Scope::Write));
        assert_eq!(api_scope(&get, "/api/v1/tokens"), Some(Scope::Admin));
        assert_eq!(api_scope(&get, "/api/v1/audit"), Some(Scope::Admin));
        assert_eq!(
            api_scope(&Method::DELETE, "/api/v1/tokens/ab"),
            Some(Scope::Admin)
        );
    }
}
