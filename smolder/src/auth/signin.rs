//! The sign-in routes of the web UI (open routes: they are how one gets in).
//!
//! * `GET /auth/session` — who is signed in: user, tenant, scopes, the CSRF
//!   token for state changes and the end; 401 (with `oidc`: whether OpenID
//!   sign-in is offered) without a session. Without authentication
//!   (`auth = disabled`, or a loopback-only server) `{"auth": false}`.
//! * `GET /auth/login?return_to=&tenant=` — to the OpenID provider.
//! * `GET /auth/callback` — back from it: the session starts.
//! * `POST /auth/token` `{"token": "smd_…"}` — signs in with an API token.
//! * `POST /auth/logout` — ends the session (with the CSRF token); answers
//!   the provider's end-session URL to go to, if it has one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use smolder_common::http::{ApiError, ErrorCode, Query};

use super::oidc::{LoginQuery, Oidc, safe_return};
use super::session::{Holder, Sessions, clear_cookie, cookie_of, csrf_ok, named_cookie};
use super::{Auth, TokenStore};

/// What the sign-in routes use.
#[derive(Clone)]
pub(crate) struct SignIn {
    pub(crate) auth: Arc<Auth>,
    pub(crate) oidc: Option<Arc<Oidc>>,
}

impl SignIn {
    fn sessions(&self) -> &Sessions {
        &self.auth.sessions
    }

    fn tokens(&self) -> &TokenStore {
        &self.auth.store
    }
}

/// The routes.
pub(crate) fn router(state: SignIn) -> Router {
    Router::new()
        .route("/auth/session", get(session))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/token", post(token))
        .route("/auth/logout", post(logout))
        .with_state(state)
}

async fn session(State(s): State<SignIn>, headers: HeaderMap) -> Response {
    if !s.auth.required {
        return Json(json!({ "auth": false })).into_response();
    }
    let ended = match cookie_of(&headers).map(|c| s.sessions().current(c)) {
        Some(Ok(current)) => {
            let p = &current.principal;
            return Json(json!({
                "auth": true,
                "user": current.name,
                "principal": p.id,
                "tenant": p.tenant,
                "scopes": p.scopes,
                "csrf_token": current.csrf,
                "expires_at": smolder_common::text::rfc3339(current.expires_at, chrono::SecondsFormat::Secs),
                "oidc": s.oidc.is_some(),
            }))
            .into_response();
        }
        Some(Err(ended)) => ended.message(),
        None => "not signed in",
    };
    let mut response = ApiError::new(ErrorCode::Unauthenticated, ended)
        .with_detail("oidc", json!(s.oidc.is_some()))
        .into_response();
    if cookie_of(&headers).is_some() {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, clear_cookie());
    }
    response
}

fn not_configured() -> Response {
    ApiError::not_found("sign-in with OpenID Connect is not configured ([oidc] issuer)")
        .into_response()
}

async fn login(State(s): State<SignIn>, Query(q): Query<LoginQuery>) -> Response {
    let Some(oidc) = &s.oidc else {
        return not_configured();
    };
    match oidc
        .start(safe_return(q.return_to.as_deref()), q.tenant)
        .await
    {
        Ok((url, browser)) => match HeaderValue::from_str(&url) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::SET_COOKIE, signin_cookie(&browser, 600)),
                ],
            )
                .into_response(),
            Err(e) => ApiError::internal("The provider's authorization URL", e).into_response(),
        },
        Err(e) => page(StatusCode::BAD_GATEWAY, "Sign-in failed", &e.to_string()),
    }
}

/// The cookie that binds a sign-in to the browser that started it (see
/// `oidc::Pending`): `Lax`, as the provider's redirect back is a navigation
/// another site starts; sent to the callback only.
const SIGNIN_COOKIE: &str = "__Secure-smolder_signin";

fn signin_cookie(value: &str, max_age: u32) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={value}; Path=/auth/callback; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}"
    ))
    .expect("a cookie of base64 text is a header value")
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(s): State<SignIn>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = &s.oidc else {
        return not_configured();
    };
    let (Some(code), Some(state)) = (&q.code, &q.state) else {
        let why = match (&q.error, &q.error_description) {
            (Some(e), Some(d)) => format!("the OpenID provider answered {e}: {d}"),
            (Some(e), None) => format!("the OpenID provider answered {e}"),
            _ => "the OpenID provider sent no code".to_string(),
        };
        return page(StatusCode::BAD_REQUEST, "Sign-in failed", &why);
    };
    let browser = named_cookie(&headers, SIGNIN_COOKIE);
    let mut response = match oidc.finish(code, state, browser).await {
        Ok(signed) => {
            let cookie = s.sessions().start(
                Holder::Person {
                    principal: signed.principal,
                    name: signed.name,
                    id_token: signed.id_token,
                },
                None,
            );
            let mut response = moving_on(&signed.return_to);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, s.sessions().set_cookie(&cookie));
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "An OpenID Connect sign-in failed.");
            page(StatusCode::FORBIDDEN, "Sign-in failed", &e.to_string())
        }
    };
    // The sign-in is over either way.
    response
        .headers_mut()
        .append(header::SET_COOKIE, signin_cookie("", 0));
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSignIn {
    token: String,
}

async fn token(State(s): State<SignIn>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(e) = smolder_common::http::require_media_type(&headers, &["application/json"]) {
        return e.into_response();
    }
    let sign_in: TokenSignIn = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => {
            return ApiError::invalid(format!("expected {{\"token\": \"smd_…\"}}: {e}"))
                .into_response();
        }
    };
    let now = smolder_common::clock::Clock::now_ns(&smolder_common::clock::SystemClock);
    match s.tokens().verify(sign_in.token.trim(), now) {
        // A token that may not read (an exporter's) is no way into the UI.
        Ok(info) if !info.allows(super::Scope::Read) => ApiError::new(
            ErrorCode::PermissionDenied,
            "the token lacks the read scope the UI needs",
        )
        .into_response(),
        Ok(info) => {
            let cookie = s.sessions().start(
                Holder::Token(sign_in.token.trim().to_string()),
                info.expires_at,
            );
            let mut response =
                Json(json!({ "user": info.id, "tenant": info.tenant })).into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, s.sessions().set_cookie(&cookie));
            response
        }
        Err(rejected) => {
            ApiError::new(ErrorCode::Unauthenticated, rejected.message()).into_response()
        }
    }
}

async fn logout(State(s): State<SignIn>, headers: HeaderMap) -> Response {
    let Some(cookie) = cookie_of(&headers) else {
        return ApiError::new(ErrorCode::Unauthenticated, "not signed in").into_response();
    };
    let mut end_session_url = None;
    if let Ok(current) = s.sessions().current(cookie) {
        if !csrf_ok(&headers, &current) {
            return csrf_refused();
        }
        if let (Some(oidc), Some(id_token)) = (&s.oidc, &current.id_token) {
            end_session_url = oidc.end_session_url(id_token).await;
        }
    }
    s.sessions().end(cookie);
    let mut response = Json(json!({ "end_session_url": end_session_url })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    response
}

/// A state change with a session cookie but not its CSRF token.
pub(crate) fn csrf_refused() -> Response {
    ApiError::new(
        ErrorCode::Forbidden,
        "a change made with a session cookie needs the session's CSRF token in X-CSRF-Token \
         (GET /auth/session has it)",
    )
    .into_response()
}

/// A small page of its own (not the UI's shell), with a strict policy.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p id=\"message\">{m}</p><p><a href=\"/\">Back to smolder</a></p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    html(status, body)
}

/// The page that moves on to the UI once the session cookie is set (see
/// the module documentation of `oidc` for why it is not a redirect).
fn moving_on(return_to: &str) -> Response {
    let target = escape(return_to);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={target}\"><title>Signed in</title></head>\
         <body><p>Signed in. <a href=\"{target}\">Continue to smolder</a></p></body></html>"
    );
    html(StatusCode::OK, body)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
