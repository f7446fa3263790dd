//! Tenants: whose data a row, a file, an SLO or an alert is.
//!
//! Every API token belongs to one tenant, and everything a request reaches
//! is that tenant's: the rows its exports stored (storage keeps each
//! tenant's buffered batches and Parquet files apart, under its own
//! prefix), the tables its queries see, its SLOs and alerts. Without
//! authentication everything is the [`Tenant::DEFAULT`] tenant's, as it was
//! before tenants existed.
//!
//! A name is a type, not a string, so that a tenant cannot be confused with
//! an SLO id or a path, and so that every name in the system went through
//! [`Tenant::parse`]: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`,
//! starting with a letter or digit. Names end up in object-store paths and
//! metric labels, which is why they are this plain.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a tenant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

/// Longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

impl Tenant {
    /// The tenant of data sent without authentication, and of everything
    /// stored before tenants existed.
    pub const DEFAULT: &'static str = "default";

    /// The default tenant.
    pub fn default_tenant() -> Self {
        Self(Arc::from(Self::DEFAULT))
    }

    /// Checks a name.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok = !name.is_empty()
            && name.len() <= MAX_TENANT_LEN
            && name.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && matches!(b, b'-' | b'_'))
            });
        if ok {
            Ok(Self(Arc::from(name)))
        } else {
            Err(format!(
                "{name:?} is not a tenant name: 1 to {MAX_TENANT_LEN} of a-z, 0-9, '-' and '_', \
                 starting with a letter or digit"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the default tenant.
    pub fn is_default(&self) -> bool {
        &*self.0 == Self::DEFAULT
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", self.0)
    }
}

impl std::str::FromStr for Tenant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Tenant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tenant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// The tenant of an API request, as the binary's authentication layer puts
/// it in the request's extensions (it does for every request). A request
/// that went through no such layer — the crates' own router tests — is the
/// default tenant's.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Tenant {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(extension_or(parts, Tenant::default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_enough_for_paths_and_labels() {
        for ok in ["default", "acme", "team-7", "a", "x_y", &"a".repeat(64)] {
            assert_eq!(Tenant::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "_x",
            "a/b",
            "..",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(Tenant::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_tenant_deserializes_only_from_a_valid_name() {
        let t: Tenant = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(t.to_string(), "acme");
        assert!(serde_json::from_str::<Tenant>("\"../etc\"").is_err());
        assert!(Tenant::default().is_default());
    }
}

/// Marks a request of one of its tenant's administrators (a token with the
/// `admin` scope, a person with the admin role, or anyone when
/// authentication is off): its SQL also sees the tables only they may query
/// (the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Administrator;

/// Who makes an API request: its token's id (a signed-in person's session
/// names the person), or `anonymous` when authentication is off. The
/// binary's authentication layer puts it in the request's extensions; what a
/// handler records as made by someone (an exclusion's `created_by`) comes
/// from here, not from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(extension_or(parts, || Actor("anonymous".into())))
    }
}

/// The request's extension of type `T`, or `default()` without one.
fn extension_or<T: Clone + Send + Sync + 'static>(
    parts: &axum::http::request::Parts,
    default: impl FnOnce() -> T,
) -> T {
    parts.extensions.get::<T>().cloned().unwrap_or_else(default)
}
