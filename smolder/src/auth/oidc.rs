//! Signing in with OpenID Connect: the authorization code flow with PKCE
//! (the `openidconnect` crate checks the ID token: signature against the
//! provider's keys, issuer, audience, expiry and nonce), and roles from a
//! claim of the ID token.
//!
//! `GET /auth/login` sends the browser to the provider with a fresh state,
//! nonce and PKCE challenge (kept here for 10 minutes); `GET /auth/callback`
//! takes the code back, exchanges it with the verifier and the client secret,
//! reads the person's roles and starts a session ([`super::session`]). The
//! answer to the callback is a page that moves on to the UI by itself rather
//! than a redirect: the callback arrives in a navigation the provider's site
//! started, in which a `SameSite=Strict` cookie set now would not be sent on
//! a redirect; a new navigation from smolder's own page sends it.
//!
//! Roles come from the claim `roles_claim` (default `groups`, a list of
//! strings): `smolder:<tenant>:<role>` or `smolder:<role>` (the default
//! tenant), role `viewer` (read), `editor` (read and change: SLOs,
//! silences, reload) or `admin` (also tokens and the audit log). Other
//! values are ignored; a person without a role is not let in. A person is
//! known to the audit log as `user:<subject>` (the provider's stable id).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;
use smolder_common::clock::Clock;
use smolder_common::secret::Secret;
use smolder_common::sync::lock;

use super::tokens::{Scope as TokenScope, TokenInfo};

smolder_common::config_section! {
    /// Signing in to the web UI with OpenID Connect (authorization code with
    /// PKCE). Unset issuer: people sign in with an API token instead.
    pub(crate) struct OidcConfig {
        /// The provider's issuer URL; its discovery document is at
        /// ISSUER/.well-known/openid-configuration.
        pub(crate) issuer: Option<String> = None,
        /// The client id smolder is registered with at the provider.
        pub(crate) client_id: Option<String> = None,
        /// The client secret: a string, { file = "PATH" } or { env = "NAME" }.
        pub(crate) client_secret: Option<Secret> = None,
        /// Where the provider sends people back, registered with it:
        /// https://HOST/auth/callback. Default: alerting.external_url +
        /// /auth/callback.
        pub(crate) redirect_url: Option<String> = None,
        /// The ID-token claim that lists a person's roles.
        pub(crate) roles_claim: String = "groups".to_string(),
        /// Claim values naming a role: PREFIX<tenant>:<role> or PREFIX<role>
        /// (the default tenant); role viewer, editor or admin.
        pub(crate) role_prefix: String = "smolder:".to_string(),
        /// Scopes asked for besides openid.
        pub(crate) scopes: Vec<String> = vec!["profile".to_string(), "email".to_string()],
        /// How long a session in the UI lasts (signed in with OpenID
        /// Connect or with a token).
        #[serde(with = "humantime_serde")]
        pub(crate) session_ttl: Duration = Duration::from_secs(8 * 3600),
    }
    validate(self, problems) {
        problems.check(
            self.issuer.is_some() == self.client_id.is_some(),
            if self.issuer.is_some() { "client_id" } else { "issuer" },
            "issuer and client_id are given together",
        );
        if let Some(issuer) = &self.issuer {
            // Plain HTTP would let anyone in the path hand smolder keys of
            // their own; only a provider on this machine may use it.
            let loopback = |u: &reqwest::Url| {
                u.host_str().is_some_and(|h| {
                    h == "localhost"
                        || h.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|a| a.is_loopback())
                })
            };
            problems.check(
                reqwest::Url::parse(issuer)
                    .is_ok_and(|u| u.scheme() == "https" || (u.scheme() == "http" && loopback(&u))),
                "issuer",
                "must be an https URL (http only on loopback)",
            );
        }
        problems.check(!self.role_prefix.is_empty(), "role_prefix", "must not be empty");
        if let Some(url) = &self.redirect_url {
            problems.check(
                reqwest::Url::parse(url).is_ok_and(|u| u.path() == "/auth/callback"),
                "redirect_url",
                "must be an absolute URL ending in /auth/callback",
            );
        }
        problems.check(
            self.session_ttl >= Duration::from_secs(1),
            "session_ttl",
            "must be at least 1s",
        );
    }
}

/// What a person may do in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Read.
    Viewer,
    /// Read and change SLOs, silences, the configuration.
    Editor,
    /// Everything, tokens and the audit log included.
    Admin,
}

impl Role {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The token scopes the role has.
    pub(crate) fn scopes(self) -> BTreeSet<TokenScope> {
        match self {
            Self::Viewer => [TokenScope::Read].into(),
            Self::Editor => [TokenScope::Read, TokenScope::Write].into(),
            Self::Admin => [TokenScope::Read, TokenScope::Write, TokenScope::Admin].into(),
        }
    }
}

/// A person's highest role in each tenant, from the values of the roles
/// claim.
pub(crate) fn roles(values: &[String], prefix: &str) -> BTreeMap<Tenant, Role> {
    let mut out: BTreeMap<Tenant, Role> = BTreeMap::new();
    for value in values {
        let Some(rest) = value.strip_prefix(prefix) else {
            continue;
        };
        let (tenant, role) = match rest.rsplit_once(':') {
            Some((tenant, role)) => (Tenant::parse(tenant).ok(), Role::parse(role)),
            None => (Some(Tenant::default()), Role::parse(rest)),
        };
        if let (Some(tenant), Some(role)) = (tenant, role) {
            let best = out.entry(tenant).or_insert(role);
            *best = (*best).max(role);
        }
    }
    out
}

/// The client after discovery: authorization URL set, token and user-info
/// URLs as the provider says.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What discovery found, and when (it is fetched again after
/// [`REDISCOVER_AFTER`], so rotated signing keys are picked up).
struct Discovered {
    client: Arc<Client>,
    end_session: Option<String>,
    at: std::time::Instant,
}

/// How long the provider's metadata and keys are used before they are
/// fetched again.
const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);

/// A sign-in on its way through the provider.
struct Pending {
    /// SHA-256 of the random value of the browser's sign-in cookie: the
    /// answer must come back to the browser that started the sign-in, or an
    /// attacker could hand someone a callback URL of their own sign-in.
    browser: [u8; 32],
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    return_to: String,
    tenant: Option<Tenant>,
    started: i64,
}

/// How long a person has at the provider's pages.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Most sign-ins under way at once (each is a few hundred bytes).
const MAX_PENDING: usize = 10_000;

/// Why a sign-in failed, for the person (the detail goes to the log).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    #[error("this sign-in is unknown or took longer than 10 minutes: start again")]
    UnknownState,
    #[error("this sign-in was not started in this browser: start again")]
    OtherBrowser,
    #[error("the OpenID provider refused: {0}")]
    Provider(String),
    #[error("the OpenID provider could not be reached or answered wrongly: {0}")]
    Unreachable(String),
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error(
        "{0} is signed in, but has no smolder role (no value of the {1:?} claim starts with {2:?})"
    )]
    NoRole(String, String, String),
}

/// A person who signed in.
#[derive(Debug)]
pub(crate) struct SignedIn {
    /// `user:<issuer's subject>`: the subject is the one stable, unique
    /// name of a person at the provider (a username or an email may be
    /// changed by the person, or reused).
    pub(crate) principal: TokenInfo,
    /// The name to show: preferred username, email or subject.
    pub(crate) name: String,
    pub(crate) id_token: String,
    pub(crate) return_to: String,
}

/// The OpenID Connect relying party.
pub(crate) struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<Secret>,
    redirect: RedirectUrl,
    roles_claim: String,
    role_prefix: String,
    scopes: Vec<String>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// The client and the provider's end-session endpoint, found at the
    /// first sign-in (a provider down at start does not stop smolder).
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer.as_str())
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// The relying party of `config` (`None` without an issuer), sending
    /// people back to `default_redirect` unless the configuration says.
    pub(crate) fn new(
        config: &OidcConfig,
        default_redirect: &str,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Self>> {
        let (Some(issuer), Some(client_id)) = (&config.issuer, &config.client_id) else {
            return Ok(None);
        };
        let redirect = config
            .redirect_url
            .clone()
            .unwrap_or_else(|| format!("{}/auth/callback", default_redirect.trim_end_matches('/')));
        let http = reqwest::Client::builder()
            // Following a redirect would let a provider send smolder's
            // requests anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Some(Self {
            issuer: IssuerUrl::new(issuer.clone())?,
            client_id: ClientId::new(client_id.clone()),
            client_secret: config.client_secret.clone(),
            redirect: RedirectUrl::new(redirect)?,
            roles_claim: config.roles_claim.clone(),
            role_prefix: config.role_prefix.clone(),
            scopes: config.scopes.clone(),
            http,
            clock,
            discovered: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }))
    }

    /// Sends a request of the `openidconnect` crate with smolder's client.
    async fn send(
        http: reqwest::Client,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, std::io::Error> {
        let request = reqwest::Request::try_from(request).map_err(std::io::Error::other)?;
        let response = http.execute(request).await.map_err(std::io::Error::other)?;
        let mut out = http::Response::builder().status(response.status());
        if let Some(headers) = out.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await.map_err(std::io::Error::other)?;
        out.body(body.to_vec()).map_err(std::io::Error::other)
    }

    async fn client(&self) -> Result<(Arc<Client>, Option<String>), SignInError> {
        let mut discovered = self.discovered.lock().await;
        if let Some(d) = discovered.as_ref()
            && d.at.elapsed() < REDISCOVER_AFTER
        {
            return Ok((Arc::clone(&d.client), d.end_session.clone()));
        }
        let http = self.http.clone();
        let call = move |r| Self::send(http.clone(), r);
        let metadata = match CoreProviderMetadata::discover_async(self.issuer.clone(), &call).await
        {
            Ok(m) => m,
            // The provider is away: what it said an hour ago still holds.
            Err(e) => {
                return match discovered.as_ref() {
                    Some(d) => {
                        tracing::warn!(error = %error_chain(&e), "Fetching the OpenID provider's metadata again failed; using the last.");
                        Ok((Arc::clone(&d.client), d.end_session.clone()))
                    }
                    None => Err(SignInError::Unreachable(error_chain(&e))),
                };
            }
        };
        // The end-session endpoint is not part of the core metadata.
        let end_session = async {
            let url = format!(
                "{}/.well-known/openid-configuration",
                self.issuer.as_str().trim_end_matches('/')
            );
            let body = self.http.get(url).send().await.ok()?.bytes().await.ok()?;
            let doc: serde_json::Value = serde_json::from_slice(&body).ok()?;
            // A browser is sent there: an http(s) URL only.
            doc["end_session_endpoint"]
                .as_str()
                .filter(|u| {
                    reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                })
                .map(String::from)
        }
        .await;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(self.redirect.clone());
        let client = Arc::new(client);
        *discovered = Some(Discovered {
            client: Arc::clone(&client),
            end_session: end_session.clone(),
            at: std::time::Instant::now(),
        });
        Ok((client, end_session))
    }

    /// The provider's URL to send a browser to, for a sign-in that returns
    /// to `return_to` (a path of the UI), in `tenant` if given; and the value
    /// of the cookie that binds the sign-in to the browser.
    pub(crate) async fn start(
        &self,
        return_to: String,
        tenant: Option<Tenant>,
    ) -> Result<(String, String), SignInError> {
        let (client, _) = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let now = self.clock.now_ns();
        let mut pending = lock(&self.pending);
        let oldest = now - duration_ns(PENDING_FOR);
        pending.retain(|_, p| p.started > oldest);
        // Full: the oldest sign-in goes (refusing new ones would let anyone
        // lock everyone out by starting sign-ins).
        if pending.len() >= MAX_PENDING
            && let Some(first) = pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&first);
        }
        let browser = super::session::random_text();
        pending.insert(
            state.secret().clone(),
            Pending {
                browser: super::session::key(&browser),
                verifier,
                nonce,
                return_to,
                tenant,
                started: now,
            },
        );
        Ok((url.to_string(), browser))
    }

    /// Completes a sign-in from the provider's answer, in the browser with
    /// the sign-in cookie `browser`.
    pub(crate) async fn finish(
        &self,
        code: &str,
        state: &str,
        browser: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let pending = lock(&self.pending)
            .remove(state)
            .filter(|p| p.started > self.clock.now_ns() - duration_ns(PENDING_FOR))
            .ok_or(SignInError::UnknownState)?;
        let same_browser = browser.is_some_and(|b| {
            constant_time_eq::constant_time_eq_32(&super::session::key(b), &pending.browser)
        });
        if !same_browser {
            return Err(SignInError::OtherBrowser);
        }
        let (client, _) = self.client().await?;
        let http = self.http.clone();
        let call = move |r| Self::send(http.clone(), r);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&call)
            .await
            .map_err(|e| SignInError::Provider(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::InvalidToken("the provider sent no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &pending.nonce)
            .map_err(|e| SignInError::InvalidToken(e.to_string()))?;
        let name = claims
            .preferred_username()
            .map(|u| u.to_string())
            .or_else(|| claims.email().map(|e| e.to_string()))
            .unwrap_or_else(|| claims.subject().to_string());
        // The signature was checked above over this very text; its payload
        // holds the roles claim, which the core claims do not name.
        let text = id_token.to_string();
        let values = role_values(&text, &self.roles_claim);
        let roles = roles(&values, &self.role_prefix);
        let chosen = pending
            .tenant
            .filter(|t| roles.contains_key(t))
            .or_else(|| roles.contains_key(&Tenant::default()).then(Tenant::default))
            .or_else(|| roles.keys().next().cloned());
        let Some(tenant) = chosen else {
            return Err(SignInError::NoRole(
                name,
                self.roles_claim.clone(),
                self.role_prefix.clone(),
            ));
        };
        let role = roles[&tenant];
        tracing::info!(user = %name, %tenant, role = ?role, "Signed in with OpenID Connect.");
        Ok(SignedIn {
            principal: TokenInfo {
                id: format!("user:{}", claims.subject().as_str()),
                tenant,
                scopes: role.scopes(),
                created_at: self.clock.now_ns(),
                expires_at: None,
                revoked_at: None,
            },
            name,
            id_token: text,
            return_to: pending.return_to,
        })
    }

    /// Where to send a browser after signing out: the provider's
    /// end-session endpoint, if it has one, coming back to the UI.
    pub(crate) async fn end_session_url(&self, id_token: &str) -> Option<String> {
        let (_, end) = self.client().await.ok()?;
        let mut url = reqwest::Url::parse(&end?).ok()?;
        let mut back = self.redirect.url().clone();
        back.set_path("/");
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("client_id", self.client_id.as_str())
            .append_pair("post_logout_redirect_uri", back.as_str());
        Some(url.to_string())
    }
}

/// The string values of `claim` in a JWT's payload (a list, or one string).
fn role_values(jwt: &str, claim: &str) -> Vec<String> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    match &payload[claim] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `GET /auth/login` query.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    /// The UI path to come back to.
    #[serde(default)]
    pub(crate) return_to: Option<String>,
    /// The tenant to sign in to, of those the person has a role in.
    #[serde(default)]
    pub(crate) tenant: Option<Tenant>,
}

/// A path of this server to return to (never another site's URL).
pub(crate) fn safe_return(path: Option<&str>) -> String {
    match path {
        // No `//host`, no backslash, and no whitespace or control
        // character, which browsers drop from URLs (`/\t/host` is `//host`).
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roles_come_from_prefixed_claim_values_highest_first() {
        let r = roles(
            &values(&[
                "smolder:viewer",
                "smolder:acme:editor",
                "smolder:acme:viewer",
                "smolder:globex:owner",
                "other:admin",
                "smolder:Not A Tenant:admin",
            ]),
            "smolder:",
        );
        let acme = Tenant::parse("acme").unwrap();
        assert_eq!(
            r,
            BTreeMap::from([(Tenant::default(), Role::Viewer), (acme, Role::Editor)])
        );
        assert_eq!(Role::Viewer.scopes(), BTreeSet::from([TokenScope::Read]));
        assert!(Role::Admin.scopes().contains(&TokenScope::Admin));
    }

    #[test]
    fn only_paths_of_this_server_are_returned_to() {
        assert_eq!(safe_return(Some("/slos/x?range=1h")), "/slos/x?range=1h");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /x",
            "",
        ] {
            assert_eq!(safe_return(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return(None), "/");
    }

    #[test]
    fn an_issuer_over_plain_http_is_refused_off_loopback() {
        use smolder_common::config::{Problems, Section as _};
        let problems = |issuer: &str| {
            let config = OidcConfig {
                issuer: Some(issuer.to_string()),
                client_id: Some("smolder".to_string()),
                ..OidcConfig::default()
            };
            let mut found = Problems::new("oidc");
            config.validate(&mut found);
            found.into_vec().len()
        };
        assert_eq!(problems("https://login.example.com/realms/sre"), 0);
        assert_eq!(problems("http://127.0.0.1:8081"), 0);
        assert_eq!(problems("http://[::1]:8081"), 0);
        assert_eq!(problems("http://login.example.com"), 1);
        assert_eq!(problems("ftp://127.0.0.1"), 1);
    }

    #[test]
    fn role_values_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"groups":["smolder:admin","x"],"one":"smolder:viewer"}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(role_values(&jwt, "groups"), ["smolder:admin", "x"]);
        assert_eq!(role_values(&jwt, "one"), ["smolder:viewer"]);
        assert!(role_values(&jwt, "none").is_empty());
    }
}
