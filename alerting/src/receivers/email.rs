//! Email through lettre: SMTP with STARTTLS (587), implicit TLS (465) or, for
//! loopback relays, plain; optional authentication; multipart text + HTML.
//! Every mail of an incident of a group carries `In-Reply-To` and
//! `References` pointing at the incident's first mail, so mail clients
//! thread the firing and resolved mails together. The HTML part shows each
//! alert's burn-rate chart inline (a `multipart/related` PNG, drawn when the
//! mail is sent; [`crate::chart`]).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use serde::{Deserialize, Serialize};
use smolder_common::secret::Secret;

use std::sync::Arc;

use super::Outcome;
use super::config::check_template;
use crate::chart::{ChartLinks, ChartRequest};
use crate::notification::{Notification, ReportMail};
use crate::render;

/// An email receiver's settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SMTP server, `host:port`.
    pub smtp: String,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (plain,
    /// only sensible on loopback).
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of extra CA certificates to trust for the SMTP server's TLS
    /// certificate (an internal CA), beside the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// SMTP user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// A minijinja template for the text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// How SMTP connections are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS (loopback relays and tests).
    None,
}

impl Config {
    pub(crate) fn check(&self, out: &mut Vec<(String, String)>) {
        if split_host_port(&self.smtp).is_none() {
            out.push(("smtp".into(), format!("{:?} is not host:port", self.smtp)));
        }
        if self.to.is_empty() {
            out.push(("to".into(), "needs at least one address".into()));
        }
        for (field, addr) in
            std::iter::once(("from", &self.from)).chain(self.to.iter().map(|t| ("to", t)))
        {
            if addr.parse::<Mailbox>().is_err() {
                out.push((field.into(), format!("{addr:?} is not an email address")));
            }
        }
        if self.username.is_some() != self.password.is_some() {
            out.push((
                "password".into(),
                "username and password go together".into(),
            ));
        }
        check_template(self.template.as_deref(), out);
    }
}

/// `host:port` split; `None` when it is not that.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

/// A header value on one line: control characters (a newline in a group
/// value from telemetry) become spaces, so nothing can add a header.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Sends mails for one receiver.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    domain: String,
    template: Option<String>,
    charts: Option<Arc<ChartLinks>>,
}

/// At most this many charts in one mail (the first alerts').
const MAX_CHARTS: usize = 4;

/// An alert's chart: its fingerprint and the PNG.
pub type InlineChart = (String, Vec<u8>);

/// The Content-ID of an alert's chart.
fn chart_cid(fingerprint: &str) -> String {
    format!("chart-{fingerprint}@smolder")
}

impl Mailer {
    /// A mailer for an (validated) email receiver.
    pub fn new(c: &Config) -> Result<Self, String> {
        let (host, port) =
            split_host_port(&c.smtp).ok_or_else(|| format!("{:?} is not host:port", c.smtp))?;
        let mode = c.tls;
        let mut builder = match (&c.ca_file, mode) {
            (_, SmtpTls::None) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            (None, SmtpTls::Starttls) => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                    .map_err(|e| format!("SMTP STARTTLS to {host}: {e}"))?
            }
            (None, SmtpTls::Tls) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| format!("SMTP TLS to {host}: {e}"))?,
            (Some(ca), _) => {
                let pem =
                    std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                let params = TlsParameters::builder(host.clone())
                    .add_root_certificate(cert)
                    .build_rustls()
                    .map_err(|e| format!("SMTP TLS to {host}: {e}"))?;
                let tls = if mode == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                };
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).tls(tls)
            }
        }
        .port(port);
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let from: Mailbox = c.from.parse().map_err(|e| format!("from: {e}"))?;
        let to =
            c.to.iter()
                .map(|t| t.parse::<Mailbox>().map_err(|e| format!("to {t:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
        let domain = from.email.domain().to_string();
        Ok(Self {
            transport: builder.build(),
            from,
            to,
            domain,
            template: c.template.clone(),
            charts: None,
        })
    }

    /// Mails with the alerts' burn-rate charts drawn by `charts`.
    pub fn with_charts(mut self, charts: Arc<ChartLinks>) -> Self {
        self.charts = Some(charts);
        self
    }

    /// The charts of a notification's first alerts; an alert whose chart
    /// cannot be drawn (its SLO deleted since, say) goes without.
    async fn charts(&self, n: &Notification) -> Vec<InlineChart> {
        let Some(charts) = self.charts.as_ref().filter(|_| n.report.is_none()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in n.alerts.iter().take(MAX_CHARTS) {
            let req = ChartRequest::for_alert(a, n.created_at);
            match charts.png(&a.tenant(), &a.slo, &req).await {
                Ok(png) => out.push((a.fingerprint.clone(), png)),
                Err(e) => {
                    tracing::info!(slo = %a.slo, error = %e.message(), "A mail goes without a burn-rate chart.");
                }
            }
        }
        out
    }

    /// The mail of a scheduled report.
    fn report_message(&self, n: &Notification, r: &ReportMail) -> Result<Message, String> {
        use base64::Engine as _;
        let charts = r
            .charts
            .iter()
            .map(|(cid, b64)| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(|png| (cid.clone(), png))
                    .map_err(|e| format!("a report chart: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&r.subject))
            .message_id(Some(format!("<{}@{}>", n.id, self.domain)));
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.multipart(Self::body(r.text.clone(), r.html.clone(), &charts))
            .map_err(|e| format!("building the mail: {e}"))
    }

    /// Text and HTML alternatives, the HTML with its images (`charts`:
    /// Content-ID and PNG).
    fn body(text: String, html: String, charts: &[(String, Vec<u8>)]) -> MultiPart {
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text);
        let html = SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(html);
        if charts.is_empty() {
            return MultiPart::alternative().singlepart(text).singlepart(html);
        }
        // The HTML and the images it shows belong together.
        let png = ContentType::parse("image/png").expect("a valid media type");
        let mut related = MultiPart::related().singlepart(html);
        for (cid, bytes) in charts {
            related = related
                .singlepart(Attachment::new_inline(cid.clone()).body(bytes.clone(), png.clone()));
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    }

    /// The mail for a notification, with `charts` inline.
    pub fn message(&self, n: &Notification, charts: &[InlineChart]) -> Result<Message, String> {
        if let Some(r) = &n.report {
            return self.report_message(n, r);
        }
        let texts = render::texts(n, self.template.as_deref())?;
        let html = render::html(
            n,
            &charts.iter().map(|(fp, _)| fp.clone()).collect::<Vec<_>>(),
        )?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&texts.title))
            .message_id(Some(format!("<{}@{}>", n.id, self.domain)));
        if n.thread != n.id {
            let root = format!("<{}@{}>", n.thread, self.domain);
            b = b.in_reply_to(root.clone()).references(root);
        }
        for to in &self.to {
            b = b.to(to.clone());
        }
        let inline: Vec<(String, Vec<u8>)> = charts
            .iter()
            .map(|(fp, png)| (chart_cid(fp), png.clone()))
            .collect();
        let body = Self::body(texts.text, html, &inline);
        b.multipart(body)
            .map_err(|e| format!("building the mail: {e}"))
    }

    /// One attempt.
    pub async fn send(&self, n: &Notification, timeout: Duration) -> Outcome {
        let charts = self.charts(n).await;
        let msg = match self.message(n, &charts) {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Failed {
                    status: None,
                    error: e,
                };
            }
        };
        match tokio::time::timeout(timeout, self.transport.send(msg)).await {
            Err(_) => Outcome::Retry {
                status: None,
                error: format!(
                    "SMTP: no answer within {}",
                    humantime::format_duration(timeout)
                ),
                retry_after: None,
            },
            Ok(Ok(resp)) => Outcome::Delivered {
                status: resp.code().to_string().parse().ok(),
            },
            Ok(Err(e)) => {
                let status = e.status().and_then(|c| c.to_string().parse().ok());
                let error = format!("SMTP: {e}");
                if e.is_permanent() {
                    Outcome::Failed { status, error }
                } else {
                    Outcome::Retry {
                        status,
                        error,
                        retry_after: None,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::receivers::fixture::rendered;

    #[tokio::test]
    async fn telemetry_in_the_title_cannot_add_a_header() {
        let (mut n, _) = rendered("firing");
        n.group_labels
            .insert("slo".into(), "x\r\nBcc: evil@example.com\r\n".into());
        let config: super::Config = toml::from_str(
            "smtp = '127.0.0.1:25'\nfrom = 'smolder@example.com'\nto = ['sre@example.com']\ntls = 'none'",
        )
        .unwrap();
        let mail = super::Mailer::new(&config)
            .unwrap()
            .message(&n, &[])
            .unwrap();
        let text = String::from_utf8_lossy(&mail.formatted()).to_string();
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(
            head.contains("Subject: [FIRING:1] x  Bcc: evil@example.com"),
            "{head}"
        );
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
    }

    #[test]
    fn the_mail_is_pinned() {
        for status in ["firing", "resolved"] {
            let (n, texts) = rendered(status);
            insta::assert_snapshot!(format!("email_title_{status}"), texts.title);
            insta::assert_snapshot!(format!("email_text_{status}"), texts.text);
            insta::assert_snapshot!(
                format!("email_html_{status}"),
                crate::render::html(&n, &[]).unwrap()
            );
        }
    }
}
