//! How smolder's own commands reach a running server (`smolder silence`,
//! `smolder slo apply`, `smolder loadgen`): its address, a token, and the
//! certificates of a server with TLS — declared once, so every command takes
//! the same flags and environment variables.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

/// Certificates for a server with TLS.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ClientTls {
    /// CA certificate(s), PEM, the server's certificate must be signed by
    /// (instead of the system's trusted roots).
    #[arg(long, global = true, env = "SMOLDER_CA_CERT", value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Client certificate, PEM, for a server that asks for one (mutual TLS).
    #[arg(
        long,
        global = true,
        env = "SMOLDER_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub(crate) client_cert: Option<PathBuf>,
    /// The client certificate's private key, PEM.
    #[arg(
        long,
        global = true,
        env = "SMOLDER_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub(crate) client_key: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

impl ClientTls {
    /// `builder` trusting the CA and presenting the client certificate.
    pub(crate) fn reqwest(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        if let Some(path) = &self.ca_cert {
            let certs = reqwest::Certificate::from_pem_bundle(&read(path, "CA certificate")?)
                .with_context(|| format!("{} holds no valid PEM certificate", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "{} holds no PEM certificate",
                path.display()
            );
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let mut pem = read(cert, "client certificate")?;
            pem.push(b'\n');
            pem.extend(read(key, "client key")?);
            let identity = reqwest::Identity::from_pem(&pem)
                .context("the client certificate and key (PEM)")?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }

    /// The gRPC client's TLS settings for `endpoint` (`https://…`).
    pub(crate) fn tonic(&self) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        let mut config = tonic::transport::ClientTlsConfig::new();
        config = match &self.ca_cert {
            Some(path) => config.ca_certificate(tonic::transport::Certificate::from_pem(read(
                path,
                "CA certificate",
            )?)),
            None => config.with_enabled_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(tonic::transport::Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        Ok(config)
    }
}

/// A server's HTTP API, as the commands that call it take it.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiArgs {
    /// The server's HTTP API.
    #[arg(
        long,
        global = true,
        env = "SMOLDER_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) server: String,
    /// An API token (`smolder token create`), sent as
    /// `Authorization: Bearer`.
    #[arg(long, global = true, env = "SMOLDER_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    #[command(flatten)]
    pub(crate) tls: ClientTls,
}

impl ApiArgs {
    /// A client that sends the token with every request.
    pub(crate) fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = http::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = http::HeaderValue::try_from(format!("Bearer {}", token.trim()))
                .context("--token is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Ok(self
            .tls
            .reqwest(reqwest::Client::builder().default_headers(headers))?
            .build()?)
    }

    /// The API's `path` on the server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }
}
