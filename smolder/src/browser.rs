//! Defences of the API and UI listener against what a browser can be made to
//! do on an SRE's behalf.
//!
//! * **DNS rebinding**: a page on `evil.example` whose name later resolves to
//!   127.0.0.1 reaches a loopback-only server with `Host: evil.example`.
//!   Requests are answered only for the server's own names: IP addresses,
//!   `localhost`, the host of `[alerting] external_url` and
//!   `[server] allowed_hosts` (`*` turns the check off).
//! * **Cross-site requests**: a page on another origin can send a "simple"
//!   POST (`mode: 'no-cors'`, `text/plain`) that the browser does not let it
//!   read but still delivers. Every state change (any method but GET, HEAD
//!   and OPTIONS) is refused when the browser says it comes from elsewhere:
//!   an `Origin` that is not this server's (or one of `[server]
//!   cors_origins`), or `Sec-Fetch-Site: cross-site`/`same-site`. Clients that
//!   are not browsers send neither header and are not affected; each mutation
//!   also reads only its declared content type
//!   (`smolder_common::http::require_media_type`).
//! * **CORS** is off unless `[server] cors_origins` lists origins.
//!
//! Authentication (tokens, sessions) comes on top of this; these checks hold
//! with or without it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use smolder_common::http::ApiError;

/// Which names and origins a browser may use.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrowserPolicy {
    /// Host names (lowercase, no port) besides IP addresses and `localhost`.
    hosts: Vec<String>,
    /// `*` in `allowed_hosts`: any name.
    any_host: bool,
    /// Origins (`scheme://host[:port]`, lowercase) whose pages may call the
    /// API.
    origins: Vec<String>,
}

impl BrowserPolicy {
    /// The policy of `allowed_hosts` and `cors_origins`, with the host of the
    /// UI's external URL allowed too.
    pub(crate) fn new(
        allowed_hosts: &[String],
        cors_origins: &[String],
        external_url: Option<&str>,
    ) -> Self {
        // A name given with a port matches the name (the port is not checked).
        let mut hosts: Vec<String> = allowed_hosts
            .iter()
            .map(|h| host_of(h.trim()).to_ascii_lowercase())
            .collect();
        if let Some(host) = external_url
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            hosts.push(host);
        }
        Self {
            any_host: hosts.iter().any(|h| h == "*"),
            hosts,
            origins: cors_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The origins CORS answers for.
    pub(crate) fn cors_origins(&self) -> &[String] {
        &self.origins
    }

    /// Whether `authority` (a `Host` header: name or address, optional port)
    /// names this server.
    fn host_allowed(&self, authority: &str) -> bool {
        // No name at all (an HTTP/1.0 client) cannot be a rebound one.
        if self.any_host || authority.is_empty() {
            return true;
        }
        let host = host_of(authority).to_ascii_lowercase();
        host.parse::<std::net::IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.hosts.contains(&host)
    }

    /// Why a state-changing request is refused, if it is: it comes from a
    /// page of another origin.
    fn cross_origin(&self, headers: &HeaderMap, authority: &str) -> Option<String> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(origin) = text(header::ORIGIN.as_str()) {
            let origin = origin.trim_end_matches('/').to_ascii_lowercase();
            let same = origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(authority));
            if same || self.origins.contains(&origin) {
                return None;
            }
            return Some(format!(
                "a request from a page of {origin} may not change anything here \
                 (list the origin in [server] cors_origins to allow it)"
            ));
        }
        match text("sec-fetch-site") {
            Some("cross-site" | "same-site") => {
                Some("a request from a page of another site may not change anything here".into())
            }
            _ => None,
        }
    }
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The middleware: refuses requests for foreign names and cross-origin state
/// changes with 403 and the reason.
pub(crate) async fn guard(
    State(policy): State<Arc<BrowserPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let authority = match request.headers().get(header::HOST) {
        Some(value) => match value.to_str() {
            Ok(text) => text.to_string(),
            Err(_) => {
                return ApiError::forbidden("the Host header is not readable text").into_response();
            }
        },
        None => request
            .uri()
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    if !policy.host_allowed(&authority) {
        return ApiError::forbidden(format!(
            "this server does not answer to the name {:?}; add it to [server] allowed_hosts",
            host_of(&authority)
        ))
        .into_response();
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && let Some(why) = policy.cross_origin(request.headers(), &authority) {
        return ApiError::forbidden(why).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_servers_own_names_are_answered() {
        let p = BrowserPolicy::new(
            &["smolder.internal".into()],
            &[],
            Some("https://slo.example.com/ui"),
        );
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
            "localhost:8080",
            "app.localhost",
            "SMOLDER.internal:8080",
            "slo.example.com",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
        ] {
            assert!(!p.host_allowed(refused), "{refused}");
        }
        assert!(BrowserPolicy::new(&["*".into()], &[], None).host_allowed("anything.example"));
    }

    #[test]
    fn cross_origin_state_changes_are_refused_and_same_origin_ones_pass() {
        let p = BrowserPolicy::new(&[], &["https://grafana.example.com".into()], None);
        let host = "127.0.0.1:8080";
        assert_eq!(p.cross_origin(&headers(&[]), host), None, "curl, scripts");
        assert_eq!(
            p.cross_origin(&headers(&[("origin", "http://127.0.0.1:8080")]), host),
            None
        );
        assert_eq!(
            p.cross_origin(&headers(&[("origin", "https://grafana.example.com")]), host),
            None
        );
        assert_eq!(
            p.cross_origin(&headers(&[("sec-fetch-site", "same-origin")]), host),
            None
        );
        for evil in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:9999")]),
            headers(&[("sec-fetch-site", "cross-site")]),
        ] {
            assert!(p.cross_origin(&evil, host).is_some(), "{evil:?}");
        }
    }
}
