//! Transport security for every listener (OTLP/gRPC, OTLP/HTTP, the API and
//! UI): one certificate, one key, optionally a client CA for mutual TLS.
//!
//! TLS is terminated in the accept loop (listen.rs), below HTTP, so gRPC,
//! HTTP/1 and HTTP/2 all get it the same way and ALPN picks the protocol.
//!
//! Certificates are short-lived where people do this well (cert-manager,
//! ACME: 90 days or less), and a restart to pick up a renewed one would drop
//! every exporter's connection. So the files are read again every
//! [`CHECK_INTERVAL`]; when their contents changed and parse, the next
//! handshake uses them (open connections keep the old one until they
//! close). Files that do not parse — a renewal caught halfway, a key that
//! does not match — are logged and the previous certificate stays: a bad
//! renewal must not take the server off the air. At start, though, a bad
//! file is an error naming it.
//!
//! Contents are compared, not modification times: secrets mounted by
//! Kubernetes change by swapping a symlink, which keeps old timestamps.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::watch;

/// How often the files are read again.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

smolder_common::config_section! {
    /// Transport security (TLS) for every listener. The certificate and key
    /// are PEM files, read again when they change on disk; with client_ca
    /// every client must present a certificate signed by it (mutual TLS).
    pub(crate) struct TlsConfig {
        /// The server's certificate chain (PEM), leaf first.
        pub(crate) cert: Option<PathBuf> = None,
        /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
        pub(crate) key: Option<PathBuf> = None,
        /// CA certificates (PEM) client certificates must be signed by;
        /// clients without one are refused during the handshake.
        pub(crate) client_ca: Option<PathBuf> = None,
    }
    validate(self, problems) {
        problems.check(
            self.cert.is_some() == self.key.is_some(),
            if self.cert.is_some() { "key" } else { "cert" },
            "cert and key are given together",
        );
        problems.check(
            self.client_ca.is_none() || self.cert.is_some(),
            "client_ca",
            "needs cert and key: mutual TLS is TLS first",
        );
    }
}

/// The files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl Files {
    fn from_config(config: &TlsConfig) -> Option<Self> {
        Some(Self {
            cert: config.cert.clone()?,
            key: config.key.clone()?,
            client_ca: config.client_ca.clone(),
        })
    }

    /// The files' bytes, to tell whether anything changed.
    fn read(&self) -> anyhow::Result<Contents> {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(Contents {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
            client_ca: self.client_ca.as_deref().map(read).transpose()?,
        })
    }
}

/// What the files held when they were last read.
#[derive(PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Contents {
    /// A server configuration made of these files.
    fn server_config(&self, files: &Files) -> anyhow::Result<Arc<ServerConfig>> {
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading certificates from {}", files.cert.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "{} holds no PEM certificate",
            files.cert.display()
        );
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .with_context(|| format!("reading a private key from {}", files.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match (&self.client_ca, &files.client_ca) {
            (Some(pem), Some(path)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.with_context(|| {
                        format!("reading CA certificates from {}", path.display())
                    })?;
                    roots
                        .add(cert)
                        .with_context(|| format!("a CA certificate in {}", path.display()))?;
                }
                anyhow::ensure!(
                    !roots.is_empty(),
                    "{} holds no PEM certificate",
                    path.display()
                );
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .with_context(|| format!("client CA {}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).with_context(|| {
            format!(
                "certificate {} with key {}",
                files.cert.display(),
                files.key.display()
            )
        })?;
        // gRPC needs HTTP/2 (clients insist on ALPN "h2"); browsers and
        // curl may use either.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The TLS configuration handshakes use now, kept current with the files.
#[derive(Debug)]
pub(crate) struct Tls {
    files: Files,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads the files; `None` when TLS is not configured. An error names
    /// the file that is missing or does not parse.
    pub(crate) fn load(config: &TlsConfig) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(files) = Files::from_config(config) else {
            return Ok(None);
        };
        let current = files.read()?.server_config(&files)?;
        Ok(Some(Arc::new(Self {
            files,
            current: RwLock::new(current),
        })))
    }

    /// What a handshake starting now uses.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&smolder_common::sync::read(&self.current)))
    }

    /// Whether clients must present a certificate.
    pub(crate) fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// Reads the files every [`CHECK_INTERVAL`] until `stop`, and swaps in
    /// what changed and parses.
    pub(crate) async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut seen = self.files.read().ok();
        let mut ticks = tokio::time::interval(CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let files = self.files.clone();
            let Ok(read) = tokio::task::spawn_blocking(move || files.read()).await else {
                continue;
            };
            let contents = match read {
                Ok(contents) => contents,
                Err(e) => {
                    if seen.take().is_some() {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "Reading the TLS files failed; the current certificate stays."
                        );
                    }
                    continue;
                }
            };
            if seen.as_ref() == Some(&contents) {
                continue;
            }
            match contents.server_config(&self.files) {
                Ok(config) => {
                    *smolder_common::sync::write(&self.current) = config;
                    tracing::info!(cert = %self.files.cert.display(), "Loaded the changed TLS certificate; new connections use it.");
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "The changed TLS files do not make a valid configuration; the current certificate stays."
                    );
                }
            }
            seen = Some(contents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, client_ca: bool) -> TlsConfig {
        TlsConfig {
            cert: Some(dir.join("cert.pem")),
            key: Some(dir.join("key.pem")),
            client_ca: client_ca.then(|| dir.join("ca.pem")),
        }
    }

    #[test]
    fn no_files_means_no_tls() {
        assert!(Tls::load(&TlsConfig::default()).unwrap().is_none());
    }

    #[test]
    fn a_missing_file_is_named_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let e = Tls::load(&config(dir.path(), false)).unwrap_err();
        assert!(format!("{e:#}").contains("cert.pem"), "{e:#}");
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "not a certificate\n").unwrap();
        std::fs::write(dir.path().join("key.pem"), "not a key\n").unwrap();
        let e = Tls::load(&config(dir.path(), false)).unwrap_err();
        assert!(
            format!("{e:#}").contains("cert.pem holds no PEM certificate"),
            "{e:#}"
        );
    }

    #[test]
    fn cert_without_key_and_client_ca_alone_are_configuration_problems() {
        let mut problems = smolder_common::config::Problems::new("tls");
        smolder_common::config::Section::validate(
            &TlsConfig {
                cert: Some("c.pem".into()),
                ..TlsConfig::default()
            },
            &mut problems,
        );
        smolder_common::config::Section::validate(
            &TlsConfig {
                client_ca: Some("ca.pem".into()),
                ..TlsConfig::default()
            },
            &mut problems,
        );
        let text = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("tls.key: cert and key are given together"),
            "{text}"
        );
        assert!(text.contains("tls.client_ca: needs cert and key"), "{text}");
    }
}
