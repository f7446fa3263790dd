//! Secrets in the configuration: webhook signing secrets, SMTP passwords,
//! PagerDuty routing keys.
//!
//! A secret is written in the file as the value itself, or — so that it need
//! not be in the file at all — read from a file or an environment variable:
//!
//! ```toml
//! secret = "whsec_…"
//! password = { file = "/run/secrets/smtp-password" }
//! routing_key = { env = "PAGERDUTY_ROUTING_KEY" }
//! ```
//!
//! The file or variable is read when the configuration is (at start and at
//! each reload); a missing one is a configuration problem naming the field.
//! A secret never shows: its `Debug` and `Display` and its serialized form
//! (`smolder config` output, API answers) are `***`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value; see the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Reads a string, or a map with `file` or `env`.
struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret: a string, { file = \"PATH\" } or { env = \"NAME\" }")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
        use serde::de::Error as _;
        let (mut file, mut env) = (None::<String>, None::<String>);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "file" => file = Some(map.next_value()?),
                "env" => env = Some(map.next_value()?),
                other => {
                    return Err(A::Error::custom(format!(
                        "a secret is read from a file or env, not {other:?}"
                    )));
                }
            }
        }
        match (file, env) {
            (Some(path), None) => std::fs::read_to_string(&path)
                .map(|text| Secret(text.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| A::Error::custom(format!("reading the secret from {path}: {e}"))),
            (None, Some(name)) => std::env::var(&name).map(Secret).map_err(|_| {
                A::Error::custom(format!("the environment variable {name} is not set"))
            }),
            _ => Err(A::Error::custom(
                "give the secret's file or env, one of them",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Conf {
        secret: Secret,
    }

    #[test]
    fn a_secret_comes_from_the_file_a_file_or_the_environment_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-a-file\n").unwrap();
        // A variable every test process has.
        let path_var = std::env::var("PATH").unwrap();
        for (text, want) in [
            ("secret = 'inline'".to_string(), "inline"),
            (
                format!("secret = {{ file = {:?} }}", path.display().to_string()),
                "from-a-file",
            ),
            ("secret = { env = 'PATH' }".to_string(), path_var.as_str()),
        ] {
            let c: Conf = toml::from_str(&text).unwrap();
            assert_eq!(c.secret.expose(), want);
            assert_eq!(format!("{c:?}"), "Conf { secret: Secret(***) }");
            assert_eq!(toml::to_string(&c).unwrap().trim(), "secret = \"***\"");
        }
        for (text, says) in [
            (
                "secret = { file = '/nonexistent/s' }",
                "reading the secret from /nonexistent/s",
            ),
            (
                "secret = { env = 'SMOLDER_TEST_UNSET_VARIABLE' }",
                "SMOLDER_TEST_UNSET_VARIABLE is not set",
            ),
            ("secret = { file = 'a', env = 'b' }", "one of them"),
            ("secret = 3", "a secret: a string"),
        ] {
            let err = toml::from_str::<Conf>(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
