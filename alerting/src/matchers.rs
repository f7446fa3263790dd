//! Label matchers in Prometheus syntax (`severity="page"`, `slo=~"checkout-.*"`,
//! `service!="db"`, `route!~"/health.*"`), parsed with the `promql-parser`
//! crate so they behave exactly as in Prometheus and Alertmanager (regular
//! expressions are anchored).

use std::collections::BTreeMap;

use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr};

/// A conjunction of label matchers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matchers(Vec<Matcher>);

impl Matchers {
    /// Parses matchers, each written `name op "value"`; `{a="b", c!="d"}` is
    /// accepted too.
    pub(crate) fn parse(items: &[String]) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in items {
            let inner = item.trim();
            let inner = inner
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or(inner);
            if inner.trim().is_empty() {
                return Err("an empty matcher".to_string());
            }
            // A metric name makes any matcher valid PromQL (PromQL refuses a
            // selector whose matchers all match the empty string).
            let expr = parser::parse(&format!("m{{{inner}}}"))
                .map_err(|e| format!("{item:?} is not a label matcher: {}", e.trim()))?;
            let Expr::VectorSelector(vs) = expr else {
                return Err(format!("{item:?} is not a label matcher"));
            };
            if !vs.matchers.or_matchers.is_empty() {
                return Err(format!("{item:?}: `or` is not supported in matchers"));
            }
            out.extend(
                vs.matchers
                    .matchers
                    .into_iter()
                    .filter(|m| m.name != "__name__"),
            );
        }
        Ok(Self(out))
    }

    /// Whether every matcher matches; a missing label is the empty string.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .all(|m| m.is_match(labels.get(&m.name).map_or("", String::as_str)))
    }

    /// Whether at least one matcher does not match an empty label set — a
    /// silence must not silence every alert by accident.
    pub(crate) fn is_selective(&self) -> bool {
        self.0.iter().any(|m| !m.is_match(""))
    }

    /// Whether a matcher is about the label `name`.
    pub(crate) fn names(&self, name: &str) -> bool {
        self.0.iter().any(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prometheus_semantics() {
        let m =
            Matchers::parse(&[r#"severity="page""#.into(), r#"slo=~"check.*""#.into()]).unwrap();
        assert!(m.matches(&labels(&[("severity", "page"), ("slo", "checkout")])));
        assert!(
            !m.matches(&labels(&[("severity", "page"), ("slo", "xcheckout")])),
            "anchored"
        );
        assert!(!m.matches(&labels(&[("severity", "ticket"), ("slo", "checkout")])));
        let neg = Matchers::parse(&[r#"{team!="db", route!~"/health.*"}"#.into()]).unwrap();
        assert!(neg.matches(&labels(&[])));
        assert!(!neg.is_selective());
        assert!(!neg.matches(&labels(&[("route", "/healthz")])));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = Matchers::parse(&["severity=page".into()]).unwrap_err();
        assert!(
            e.contains("\"severity=page\" is not a label matcher"),
            "{e}"
        );
        assert!(Matchers::parse(&[r#"a=~"(""#.into()]).is_err());
        assert!(Matchers::parse(&["".into()]).is_err());
    }
}
