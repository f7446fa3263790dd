//! People in the web UI: signing in — with OpenID Connect (authorization
//! code with PKCE, [`oidc`](super::oidc)) or, for small setups, with an API
//! token — and the sessions that follow.
//!
//! A session is a random 256-bit value in a cookie that scripts cannot read
//! (`HttpOnly`), that is only sent over HTTPS or loopback (`Secure`) and never
//! with a request another site starts (`SameSite=Strict`); the server keeps
//! only its SHA-256, with whom it stands for and until when. Because a
//! cookie is sent by the browser on its own, every state change made with
//! one must also carry the session's CSRF token in `X-CSRF-Token` (the UI
//! reads it from `GET /auth/session`, which another origin cannot read): a
//! form or script on another site has the cookie sent but cannot know the
//! token. Requests with `Authorization: Bearer` are not cookie-based and do
//! not need it.
//!
//! Sessions live in memory: a restart signs everyone out, which is the safe
//! failure. A session made from a token is checked against the token at
//! every request, so revoking the token ends it.
//!
//! Handlers see a session's principal as a [`TokenInfo`] whose id is
//! `user:<subject>` (or the token's id), with the scopes of the person's role
//! in the tenant: the audit log and the tenant checks work the same for
//! both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use smolder_common::clock::Clock;
use smolder_common::sync::lock;

use super::tokens::{Rejected, TokenInfo, TokenStore};

/// The session cookie's name. `__Host-`: browsers take it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant
/// one.
pub(crate) const COOKIE: &str = "__Host-smolder_session";

/// The header a state change made with a session cookie must carry.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Most sessions kept at once; beyond it the oldest goes.
const MAX_SESSIONS: usize = 100_000;

/// Who a session stands for.
#[derive(Debug, Clone)]
pub(crate) enum Holder {
    /// A person signed in with OpenID Connect, with the scopes of their role.
    Person {
        principal: TokenInfo,
        /// The name shown.
        name: String,
        /// The ID token, sent back to the provider at sign-out.
        id_token: String,
    },
    /// An API token typed into the sign-in page (checked at every request).
    Token(String),
}

#[derive(Debug, Clone)]
struct Session {
    holder: Holder,
    csrf: String,
    created_at: i64,
    expires_at: i64,
}

/// A live session as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) principal: TokenInfo,
    pub(crate) csrf: String,
    pub(crate) expires_at: i64,
    /// The ID token of a person signed in with OpenID Connect.
    pub(crate) id_token: Option<String>,
    /// The name shown (the token's id for a token's session).
    pub(crate) name: String,
}

/// Why a cookie is not a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Unknown (signed out, or the server restarted).
    Unknown,
    /// Past its end.
    Expired,
    /// The token it was made from is no longer valid.
    Token(Rejected),
}

impl Ended {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Unknown => {
                "the session has ended (signed out, or the server restarted): sign in again"
            }
            Self::Expired => "the session has expired: sign in again",
            Self::Token(_) => "the token this session was signed in with is no longer valid",
        }
    }
}

/// Every live session.
pub(crate) struct Sessions {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    tokens: Arc<TokenStore>,
    live: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_text() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Sessions lasting `ttl` (a token's at most until the token expires;
    /// a person's `ttl` whatever their ID token's own expiry, as usual for
    /// web sessions — a role taken away at the provider counts from the
    /// next sign-in), checking token sessions against `tokens`.
    pub(crate) fn new(ttl: Duration, clock: Arc<dyn Clock>, tokens: Arc<TokenStore>) -> Self {
        Self {
            ttl,
            clock,
            tokens,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session; returns the cookie value (shown to no one else).
    pub(crate) fn start(&self, holder: Holder, not_after: Option<i64>) -> String {
        let now = self.clock.now_ns();
        let ttl = i64::try_from(self.ttl.as_nanos()).unwrap_or(i64::MAX);
        let expires_at =
            not_after.map_or(now.saturating_add(ttl), |n| n.min(now.saturating_add(ttl)));
        let cookie = random_text();
        let mut live = lock(&self.live);
        live.retain(|_, s| s.expires_at > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.created_at)
                .map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(
            key(&cookie),
            Session {
                holder,
                csrf: random_text(),
                created_at: now,
                expires_at,
            },
        );
        cookie
    }

    /// The session of a cookie value.
    pub(crate) fn current(&self, cookie: &str) -> Result<Current, Ended> {
        let now = self.clock.now_ns();
        let k = key(cookie);
        let session = {
            let mut live = lock(&self.live);
            let Some(s) = live.get(&k) else {
                return Err(Ended::Unknown);
            };
            if s.expires_at <= now {
                live.remove(&k);
                return Err(Ended::Expired);
            }
            s.clone()
        };
        let (principal, id_token, name) = match session.holder {
            Holder::Person {
                principal,
                name,
                id_token,
            } => (principal, Some(id_token), name),
            Holder::Token(token) => match self.tokens.verify(&token, now) {
                Ok(info) => {
                    let name = format!("token {}", info.id);
                    (info, None, name)
                }
                Err(r) => {
                    lock(&self.live).remove(&k);
                    return Err(Ended::Token(r));
                }
            },
        };
        Ok(Current {
            principal,
            csrf: session.csrf,
            expires_at: session.expires_at,
            id_token,
            name,
        })
    }

    /// Ends a session.
    pub(crate) fn end(&self, cookie: &str) {
        lock(&self.live).remove(&key(cookie));
    }

    /// The `Set-Cookie` value that starts a session.
    pub(crate) fn set_cookie(&self, cookie: &str) -> HeaderValue {
        let value = format!(
            "{COOKIE}={cookie}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
            self.ttl.as_secs()
        );
        HeaderValue::from_str(&value).expect("a cookie of base64 text is a header value")
    }
}

/// The `Set-Cookie` value that ends a session in the browser.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-smolder_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
    )
}

/// The session cookie a request carries.
pub(crate) fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    named_cookie(headers, COOKIE)
}

/// The cookie `name` a request carries.
pub(crate) fn named_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether a request carries the session's CSRF token (compared in
/// constant time).
pub(crate) fn csrf_ok(headers: &HeaderMap, session: &Current) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| constant_time_eq::constant_time_eq(v.as_bytes(), session.csrf.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-smolder_session=abc_-; b=2"),
        );
        assert_eq!(cookie_of(&headers), Some("abc_-"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-smolder_session="),
        );
        assert_eq!(cookie_of(&headers), None);
    }
}
