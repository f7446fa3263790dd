//! Email through lettre: SMTP with STARTTLS (587), implicit TLS (465) or, for
//! loopback relays, plain; optional authentication; multipart text + HTML.
//! Every mail of an incident of a group carries `In-Reply-To` and
//! `References` pointing at the incident's first mail, so mail clients
//! thread the firing and resolved mails together.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::Outcome;
use crate::config::{ReceiverConfig, SmtpTls};
use crate::notification::Notification;
use crate::render;

/// `host:port` split; `None` when it is not that.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

/// Sends mails for one receiver.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    domain: String,
}

impl Mailer {
    /// A mailer for an (validated) email receiver.
    pub fn new(c: &ReceiverConfig) -> Result<Self, String> {
        let smtp = c.smtp.as_deref().ok_or("an email receiver needs smtp")?;
        let (host, port) =
            split_host_port(smtp).ok_or_else(|| format!("{smtp:?} is not host:port"))?;
        let mode = c.tls.unwrap_or_default();
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
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from: Mailbox = c
            .from
            .as_deref()
            .ok_or("an email receiver needs from")?
            .parse()
            .map_err(|e| format!("from: {e}"))?;
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
        })
    }

    /// The mail for a notification.
    pub fn message(&self, n: &Notification, template: Option<&str>) -> Result<Message, String> {
        let texts = render::texts(n, template)?;
        let html = render::html(n)?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(texts.title)
            .message_id(Some(format!("<{}@{}>", n.id, self.domain)));
        if n.thread != n.id {
            let root = format!("<{}@{}>", n.thread, self.domain);
            b = b.in_reply_to(root.clone()).references(root);
        }
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(texts.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| format!("building the mail: {e}"))
    }

    /// One attempt.
    pub async fn send(
        &self,
        n: &Notification,
        template: Option<&str>,
        timeout: Duration,
    ) -> Outcome {
        let msg = match self.message(n, template) {
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
