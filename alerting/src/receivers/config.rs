//! A receiver's configuration: its name, the settings every kind shares
//! ([`Common`]) and the kind's own, as a tagged enum ([`Kind`]) whose variants
//! live in the kind's module (`type = "slack"` → [`super::slack::Config`]).
//! What a kind requires is a field of its type, not an `Option` checked by
//! hand.
//!
//! Reading one is done here rather than by serde's derive for a reason: a
//! derived internally tagged enum stops at the first problem, while smolder
//! reports every problem of a file at once, with its field path
//! (`alerting.receivers[0].url: is required for slack receivers`). So a
//! receiver is read as a map: `name` and `type` first, then the keys
//! [`Common`] knows, then the kind's; every key no one knows, a missing
//! required field or a value of the wrong shape becomes a problem kept with
//! the entry ([`Receivers`]), and [`crate::config::AlertingConfig::check`]
//! reports them with the rest of the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_value::{Value, ValueDeserializer};
use smolder_common::secret::Secret;

use super::{alertmanager, discord, email, google_chat, pagerduty, slack, teams, webhook};
use crate::notification::Notification;
use crate::render::Texts;

/// A receiver: where notifications go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiverConfig {
    /// Name referenced by routes.
    pub name: String,
    /// Settings every kind has.
    #[serde(flatten)]
    pub common: Common,
    /// The kind (`type = "…"`) and its own settings.
    #[serde(flatten)]
    pub kind: Kind,
}

/// Settings every receiver has.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Common {
    /// Extra HTTP headers (HTTP receivers); values are secrets (an
    /// `Authorization` header is one), so a file or env works too.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Send notifications when a group resolves.
    pub send_resolved: bool,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Requests per second at most (unset: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Timeout of one attempt (unset: `alerting.delivery.timeout`).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

impl Default for Common {
    fn default() -> Self {
        Self {
            headers: BTreeMap::new(),
            send_resolved: true,
            max_concurrency: 4,
            rate_limit: None,
            timeout: None,
        }
    }
}

/// The kinds of receiver, each with its own settings. Adding one is a module
/// beside this one and a variant here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// A generic JSON webhook.
    Webhook(webhook::Config),
    /// An Alertmanager's `POST /api/v2/alerts`.
    Alertmanager(alertmanager::Config),
    /// A Slack incoming webhook.
    Slack(slack::Config),
    /// A Mattermost incoming webhook (Slack-compatible).
    Mattermost(slack::Config),
    /// A Microsoft Teams Workflows webhook (adaptive card).
    Teams(teams::Config),
    /// A Discord webhook.
    Discord(discord::Config),
    /// A Google Chat space webhook.
    GoogleChat(google_chat::Config),
    /// PagerDuty Events API v2.
    Pagerduty(pagerduty::Config),
    /// Email over SMTP.
    Email(email::Config),
}

/// The `type` names, in the order the documentation lists them.
pub const KINDS: [&str; 9] = [
    "webhook",
    "alertmanager",
    "slack",
    "mattermost",
    "teams",
    "discord",
    "google_chat",
    "pagerduty",
    "email",
];

impl Kind {
    /// The name used in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Alertmanager(_) => "alertmanager",
            Self::Slack(_) => "slack",
            Self::Mattermost(_) => "mattermost",
            Self::Teams(_) => "teams",
            Self::Discord(_) => "discord",
            Self::GoogleChat(_) => "google_chat",
            Self::Pagerduty(_) => "pagerduty",
            Self::Email(_) => "email",
        }
    }

    /// Reads the kind named `type` from the keys left after the common ones.
    fn read(kind: &str, map: Map, out: &mut Vec<(String, String)>) -> Option<Self> {
        Some(match kind {
            "webhook" => Self::Webhook(typed(kind, map, out)?),
            "alertmanager" => Self::Alertmanager(typed(kind, map, out)?),
            "slack" => Self::Slack(typed(kind, map, out)?),
            "mattermost" => Self::Mattermost(typed(kind, map, out)?),
            "teams" => Self::Teams(typed(kind, map, out)?),
            "discord" => Self::Discord(typed(kind, map, out)?),
            "google_chat" => Self::GoogleChat(typed(kind, map, out)?),
            "pagerduty" => Self::Pagerduty(typed(kind, map, out)?),
            "email" => Self::Email(typed(kind, map, out)?),
            other => {
                out.push((
                    "type".into(),
                    format!(
                        "unknown receiver type {other:?}; one of {}",
                        KINDS.join(", ")
                    ),
                ));
                return None;
            }
        })
    }

    /// What the kind's own checks find: (field, message).
    fn problems(&self, out: &mut Vec<(String, String)>) {
        match self {
            Self::Webhook(c) => c.check(out),
            Self::Alertmanager(_) | Self::Pagerduty(_) => {}
            Self::Slack(c) | Self::Mattermost(c) => c.check(out),
            Self::Teams(c) | Self::Discord(c) | Self::GoogleChat(c) => c.check(out),
            Self::Email(c) => c.check(out),
        }
    }
}

impl ReceiverConfig {
    /// Every problem of a well-formed receiver: (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let c = &self.common;
        if c.max_concurrency == 0 {
            out.push(("max_concurrency".into(), "must be at least 1".into()));
        }
        if c.rate_limit == Some(0) {
            out.push(("rate_limit".into(), "must be at least 1 per second".into()));
        }
        if c.timeout.is_some_and(|t| t.is_zero()) {
            out.push(("timeout".into(), "must be longer than 0s".into()));
        }
        for (name, value) in &c.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                out.push((
                    format!("headers.{name}"),
                    "is not a valid HTTP header name".into(),
                ));
            } else if http::HeaderValue::from_str(value.expose()).is_err() {
                out.push((
                    format!("headers.{name}"),
                    "is not a valid HTTP header value".into(),
                ));
            }
        }
        self.kind.problems(&mut out);
        out
    }

    /// Reads one receiver, or says everything that is wrong with it.
    fn read(mut map: Map) -> Result<Self, Vec<(String, String)>> {
        let mut out = Vec::new();
        let name = take_string(&mut map, "name", &mut out);
        let kind = take_string(&mut map, "type", &mut out);
        let (common, rest) = split::<Common>(map);
        let common =
            common.map_err(|errors| out.extend(errors.into_iter().map(|e| e.describe(""))));
        let kind = kind.and_then(|k| Kind::read(&k, rest, &mut out));
        match (name, common, kind) {
            (Some(name), Ok(common), Some(kind)) => {
                let read = Self { name, common, kind };
                if out.is_empty() {
                    Ok(read)
                } else {
                    // Unknown keys do not hide the problems of the rest.
                    out.extend(read.problems());
                    Err(out)
                }
            }
            _ => Err(out),
        }
    }
}

impl<'de> Deserialize<'de> for ReceiverConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::read(Map::deserialize(d)?).map_err(|problems| {
            let text: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

/// `[[alerting.receivers]]` as read: each entry with its name and either its
/// configuration or its problems, so that the file's other problems (and
/// routes that name a broken receiver) are still reported with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Receivers {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: Option<String>,
    read: Result<ReceiverConfig, Vec<(String, String)>>,
}

impl Receivers {
    /// The receivers that were read without problems.
    pub fn iter(&self) -> impl Iterator<Item = &ReceiverConfig> {
        self.entries.iter().filter_map(|e| e.read.as_ref().ok())
    }

    /// Whether no receiver is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a receiver.
    pub fn push(&mut self, r: ReceiverConfig) {
        self.entries.push(Entry {
            name: Some(r.name.clone()),
            read: Ok(r),
        });
    }

    /// Each entry's name (when it has one) and problems, in file order.
    pub fn checked(&self) -> impl Iterator<Item = (Option<&str>, Vec<(String, String)>)> {
        self.entries.iter().map(|e| {
            let problems = match &e.read {
                Ok(r) => r.problems(),
                Err(found) => found.clone(),
            };
            (e.name.as_deref(), problems)
        })
    }
}

impl FromIterator<ReceiverConfig> for Receivers {
    fn from_iter<I: IntoIterator<Item = ReceiverConfig>>(iter: I) -> Self {
        let mut out = Self::default();
        for r in iter {
            out.push(r);
        }
        out
    }
}

impl<'de> Deserialize<'de> for Receivers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<Map>::deserialize(d)?
            .into_iter()
            .map(|map| Entry {
                name: match map.get(&Value::String("name".into())) {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                read: ReceiverConfig::read(map),
            })
            .collect();
        Ok(Self { entries })
    }
}

impl Serialize for Receivers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The settings of chat receivers that take a URL and a text template
/// (Teams, Discord, Google Chat).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// The incoming webhook's URL (a secret: the URL is the credential).
    pub url: WebhookUrl,
    /// A minijinja template for the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl ChatConfig {
    pub(crate) fn check(&self, out: &mut Vec<(String, String)>) {
        check_template(self.template.as_deref(), out);
    }

    /// The URL and the body `payload` makes of the notification's texts.
    pub(crate) fn request(
        &self,
        n: &Notification,
        payload: impl Fn(&Notification, &Texts) -> serde_json::Value,
    ) -> Result<(String, Vec<u8>), String> {
        let texts = crate::render::texts(n, self.template.as_deref())?;
        Ok((
            self.url.expose().to_string(),
            super::json_bytes(&payload(n, &texts)),
        ))
    }
}

/// The URL of a chat service's incoming webhook (Slack, Mattermost, Teams,
/// Discord, Google Chat), whose path is the credential: anyone who has it
/// can post to the channel. So it is a secret — given as the value, `{ file
/// = … }` or `{ env = … }` (smolder_common::secret) — and it shows as
/// `https://hooks.slack.com/***` wherever the configuration is printed or
/// logged; a bad one is reported without its value.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(HttpUrl);

impl WebhookUrl {
    /// Checks that `url` is an http(s) URL.
    pub fn new(url: &str) -> Result<Self, String> {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(Self(HttpUrl(url.to_string())))
            }
            _ => Err("is not an http(s) URL (the value is not shown: it is a secret)".into()),
        }
    }

    /// The URL, for the one place that posts to it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Scheme and host, the rest hidden.
    fn redacted(&self) -> String {
        match reqwest::Url::parse(self.0.as_str()) {
            Ok(u) => format!("{}://{}/***", u.scheme(), u.host_str().unwrap_or_default()),
            Err(_) => "***".into(),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secret = smolder_common::secret::Secret::deserialize(d)?;
        Self::new(secret.expose()).map_err(serde::de::Error::custom)
    }
}

/// A URL that receivers POST to: `http` or `https`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Checks that `url` is an http(s) URL.
    pub fn new(url: &str) -> Result<Self, String> {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Self(url.to_string())),
            Ok(u) => Err(format!(
                "{url:?}: the scheme must be http or https, not {}",
                u.scheme()
            )),
            Err(e) => Err(format!("{url:?} is not a URL: {e}")),
        }
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<HttpUrl> for String {
    fn from(u: HttpUrl) -> Self {
        u.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a template field shared by several kinds.
pub(crate) fn check_template(template: Option<&str>, out: &mut Vec<(String, String)>) {
    if let Some(t) = template
        && let Err(e) = crate::render::check_template(t)
    {
        out.push(("template".into(), e));
    }
}

type Map = BTreeMap<Value, Value>;

fn take_string(map: &mut Map, key: &str, out: &mut Vec<(String, String)>) -> Option<String> {
    match map.remove(&Value::String(key.into())) {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            out.push((key.into(), "must be a string".into()));
            None
        }
        None => {
            let hint = if key == "type" {
                format!(" (one of {})", KINDS.join(", "))
            } else {
                String::new()
            };
            out.push((key.into(), format!("is required{hint}")));
            None
        }
    }
}

/// Reads a kind's settings: every problem goes to `out`.
fn typed<T: DeserializeOwned>(kind: &str, map: Map, out: &mut Vec<(String, String)>) -> Option<T> {
    let (read, unknown) = split::<T>(map);
    for key in unknown.keys() {
        out.push((
            key_text(key),
            format!("is not a setting of {kind} receivers"),
        ));
    }
    match read {
        Ok(t) => Some(t),
        Err(errors) => {
            out.extend(errors.into_iter().map(|e| e.describe(kind)));
            None
        }
    }
}

/// Deserializes `T` from the keys of `map` it knows, and hands back the keys
/// it does not know. `T` denies unknown fields: each refused key is moved
/// aside and the rest read again; a key whose value has the wrong shape is
/// noted and dropped, so one bad value does not hide the next problem.
fn split<T: DeserializeOwned>(mut map: Map) -> (Result<T, Vec<ReadError>>, Map) {
    let mut unknown = Map::new();
    let mut errors = Vec::new();
    let mut dropped = BTreeSet::new();
    // Each round removes a key, so this ends.
    loop {
        let input = ValueDeserializer::<FieldError>::new(Value::Map(map.clone()));
        let e = match serde_path_to_error::deserialize::<_, T>(input) {
            Ok(t) if errors.is_empty() => return (Ok(t), unknown),
            Ok(_) => return (Err(errors), unknown),
            Err(e) => e,
        };
        let path = e.path().to_string();
        let top = Value::String(
            path.split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        match e.into_inner() {
            FieldError::Unknown(key) => match map.remove_entry(&Value::String(key.clone())) {
                Some((k, v)) => {
                    unknown.insert(k, v);
                }
                // Not a key of this map: a nested value's.
                None => {
                    let message = format!("unknown field `{key}`");
                    errors.push(ReadError::Other { path, message });
                    map.remove(&top);
                }
            },
            FieldError::Missing(field) => {
                if !dropped.contains(field) {
                    errors.push(ReadError::Missing(field));
                }
                return (Err(errors), unknown);
            }
            FieldError::Other(message) => {
                errors.push(ReadError::Other { path, message });
                match map.remove(&top) {
                    Some(_) => {
                        dropped.insert(key_text(&top));
                    }
                    None => return (Err(errors), unknown),
                }
            }
        }
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Why a kind's settings could not be read.
enum ReadError {
    /// A required field is absent.
    Missing(&'static str),
    /// A value of the wrong shape, at `path`.
    Other { path: String, message: String },
}

impl ReadError {
    fn describe(self, kind: &str) -> (String, String) {
        match self {
            Self::Missing(field) => (field.into(), format!("is required for {kind} receivers")),
            Self::Other { path, message } => {
                let field = if path == "." { String::new() } else { path };
                (field, message)
            }
        }
    }
}

/// serde's errors, keeping which field was missing or unknown.
#[derive(Debug)]
enum FieldError {
    Missing(&'static str),
    Unknown(String),
    Other(String),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(field) => write!(f, "missing field `{field}`"),
            Self::Unknown(field) => write!(f, "unknown field `{field}`"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FieldError {}

impl serde::de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Other(msg.to_string())
    }
    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }
    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Self::Unknown(field.to_string())
    }
}

/// Names of the receivers in `list`, for checks of references.
pub(crate) fn names(list: &Receivers) -> BTreeSet<&str> {
    list.entries
        .iter()
        .filter_map(|e| e.name.as_deref())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        #[derive(Deserialize)]
        struct File {
            receivers: Receivers,
        }
        let file: File = toml::from_str(text).expect("TOML");
        file.receivers
            .checked()
            .flat_map(|(_, p)| p)
            .map(|(f, m)| format!("{f}: {m}"))
            .collect()
    }

    #[test]
    fn chat_webhook_urls_are_secrets_never_shown() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        let parsed: WebhookUrl = serde_json::from_value(serde_json::json!(url)).unwrap();
        assert_eq!(parsed.expose(), url);
        assert_eq!(parsed.to_string(), "https://hooks.slack.com/***");
        assert_eq!(format!("{parsed:?}"), "https://hooks.slack.com/***");
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            "\"https://hooks.slack.com/***\""
        );
        // Read from a file, and a bad one reported without its value.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slack-url");
        std::fs::write(&file, format!("{url}\n")).unwrap();
        let from_file: WebhookUrl =
            serde_json::from_value(serde_json::json!({ "file": file })).unwrap();
        assert_eq!(from_file.expose(), url);
        std::fs::write(&file, "ftp://hooks.example/SECRET").unwrap();
        let bad = serde_json::from_value::<WebhookUrl>(serde_json::json!({ "file": file }))
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("not an http(s) URL") && !bad.contains("SECRET"),
            "{bad}"
        );
        let found = problems("[[receivers]]\nname = 'c'\ntype = 'slack'\nurl = 'hooks/SECRET'");
        assert!(!found.concat().contains("SECRET"), "{found:?}");
    }

    #[test]
    fn a_kind_requires_its_fields_and_refuses_others() {
        assert_eq!(
            problems("[[receivers]]\nname = 'ops'\ntype = 'slack'\nrouting_key = 'x'\nsmtp = 'y'"),
            [
                "routing_key: is not a setting of slack receivers",
                "smtp: is not a setting of slack receivers",
                "url: is required for slack receivers",
            ]
        );
        assert_eq!(
            problems("[[receivers]]\nname = 'p'\ntype = 'pagerduty'"),
            ["routing_key: is required for pagerduty receivers"]
        );
    }

    #[test]
    fn values_of_the_wrong_shape_name_their_field() {
        let found = problems(
            "[[receivers]]\nname = 'w'\ntype = 'webhook'\nurl = 'ftp://x'\n\
             [[receivers]]\nname = 'm'\ntype = 'email'\nsmtp = 'h:25'\nfrom = 'a@b.c'\nto = ['d@e.f']\ntls = 'startls'\n\
             [[receivers]]\nname = 'c'\ntype = 'teams'\nurl = 'http://x'\nmax_concurrency = 'many'",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("url: \"ftp://x\": the scheme"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("tls: unknown variant `startls`"),
            "{found:?}"
        );
        assert!(found[2].starts_with("max_concurrency: "), "{found:?}");
    }

    #[test]
    fn name_and_type_are_required_and_the_type_known() {
        assert_eq!(
            problems("[[receivers]]\nurl = 'http://x'\n[[receivers]]\nname = 'x'\ntype = 'sms'"),
            [
                "name: is required",
                "type: is required (one of webhook, alertmanager, slack, mattermost, teams, discord, google_chat, pagerduty, email)",
                "type: unknown receiver type \"sms\"; one of webhook, alertmanager, slack, mattermost, teams, discord, google_chat, pagerduty, email",
            ]
        );
    }

    #[test]
    fn secrets_come_from_files_and_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("pd-key");
        std::fs::write(&key, "R0UTINGKEY\n").unwrap();
        let text = format!(
            "name = 'pd'\ntype = 'pagerduty'\nrouting_key = {{ file = {:?} }}\n\
             headers = {{ Authorization = 'Bearer H3ADERSECRET' }}",
            key.display().to_string()
        );
        let r: ReceiverConfig = toml::from_str(&text).unwrap();
        assert!(matches!(&r.kind, Kind::Pagerduty(p) if p.routing_key.expose() == "R0UTINGKEY"));
        for shown in [format!("{r:?}"), toml::to_string(&r).unwrap()] {
            assert!(
                !shown.contains("R0UTINGKEY") && !shown.contains("H3ADERSECRET"),
                "{shown}"
            );
        }
        let found = problems(
            "[[receivers]]\nname = 'm'\ntype = 'email'\nsmtp = 'h:25'\nfrom = 'a@b.c'\nto = ['d@e.f']\n\
             username = 'u'\npassword = { file = '/nonexistent/pw' }",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("password: reading the secret from /nonexistent/pw"),
            "{found:?}"
        );
    }

    #[test]
    fn a_receiver_reads_back_what_it_writes() {
        let text = "name = 'mail'\ntype = 'email'\nsmtp = 'mx:587'\nfrom = 'smolder@example.com'\n\
                    to = ['sre@example.com']\nsend_resolved = false\ntimeout = '5s'";
        let r: ReceiverConfig = toml::from_str(text).unwrap();
        assert!(!r.common.send_resolved);
        assert_eq!(r.common.timeout, Some(Duration::from_secs(5)));
        assert!(matches!(&r.kind, Kind::Email(e) if e.to == ["sre@example.com"]));
        let again: ReceiverConfig = toml::from_str(&toml::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }
}
