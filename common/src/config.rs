//! How every crate declares its part of smolder's configuration.
//!
//! Each crate owns a section of the TOML file (`[query]`, `[slo]` …) as a
//! serde struct declared with [`config_section!`]: one line per option holds
//! its documentation, its type and its default, so the default in the docs,
//! in `smolder config defaults`, in `smolder.example.toml` and in the running
//! server cannot drift apart. The macro derives what the binary needs to layer
//! defaults, the file, the environment and flags over the struct (it only
//! knows the sections by these traits) and to print the documented defaults.
//!
//! [`Section::validate`] checks what a type cannot (ranges, relations between
//! options) and reports *every* problem with its field path, so an operator
//! fixes a file in one go rather than one error per restart.

use std::fmt;

/// One option of a section: its key and its documentation, line by line as
/// written in the source.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Key in the section (`max_rows`).
    pub name: &'static str,
    /// Doc comment lines.
    pub doc: &'static [&'static str],
}

impl Field {
    /// The first sentence of the documentation, for `--help`.
    pub fn summary(&self) -> String {
        let text = self
            .doc
            .iter()
            .map(|l| l.trim())
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        match text.find(". ") {
            Some(end) => text[..=end].to_string(),
            None => text,
        }
    }
}

/// A configuration problem: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the field, e.g. `query.timeout` or `alerting.receivers[2].url`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Problem {}

/// Problems found while validating, each under the path of its section.
#[derive(Debug, Default)]
pub struct Problems {
    prefix: String,
    found: Vec<Problem>,
}

impl Problems {
    /// Collects problems of fields under `prefix` (a section name; empty for
    /// the top level).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            found: Vec::new(),
        }
    }

    /// Records that `field` (relative to the prefix) is wrong.
    pub fn push(&mut self, field: impl AsRef<str>, message: impl Into<String>) {
        let field = field.as_ref();
        let field = match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{field}", self.prefix),
        };
        self.found.push(Problem {
            field,
            message: message.into(),
        });
    }

    /// Records a problem unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.push(field, message);
        }
    }

    /// Adds problems found elsewhere (their paths already complete).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.found.extend(problems);
    }

    /// The problems found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.found
    }
}

/// A section of the configuration file, declared with [`config_section!`].
pub trait Section: Default {
    /// The section's documentation, line by line.
    const DOC: &'static [&'static str];
    /// Its options, in declaration order.
    const FIELDS: &'static [Field];

    /// Checks what the types cannot; field paths are relative to the
    /// section (the caller's [`Problems`] carries its name).
    fn validate(&self, problems: &mut Problems);
}

/// Declares a configuration section: a serde struct that refuses unknown
/// keys, whose `Default` is made of the defaults written beside each field,
/// and which implements [`Section`] (its documentation and fields) once its
/// crate writes `validate`:
///
/// ```
/// use std::time::Duration;
/// smolder_common::config_section! {
///     /// `[example]`: what it configures.
///     pub struct ExampleConfig {
///         /// Time a thing may take.
///         #[serde(with = "humantime_serde")]
///         pub timeout: Duration = Duration::from_secs(30),
///         /// Things at most.
///         pub max_things: usize = 100,
///     }
///     validate(self, problems) {
///         problems.check(self.max_things > 0, "max_things", "must be positive");
///     }
/// }
/// assert_eq!(ExampleConfig::default().max_things, 100);
/// ```
#[macro_export]
macro_rules! config_section {
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $name:ident {
            $(
                $(#[$($attr:tt)*])*
                $fvis:vis $field:ident : $ty:ty = $default:expr
            ),* $(,)?
        }
        validate($self_:ident, $problems:ident) $validate:block
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        $vis struct $name {
            $(
                $(#[$($attr)*])*
                $fvis $field: $ty,
            )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $crate::config::Section for $name {
            const DOC: &'static [&'static str] = &[$($doc),*];
            const FIELDS: &'static [$crate::config::Field] = &[$(
                $crate::config::Field {
                    name: stringify!($field),
                    doc: $crate::__config_doc!([] $(#[$($attr)*])*),
                }
            ),*];

            #[allow(unused_variables)]
            fn validate(&$self_, $problems: &mut $crate::config::Problems) $validate
        }
    };
}

/// Collects the `#[doc = "…"]` attributes of a field into a slice
/// (implementation detail of [`config_section!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __config_doc {
    ([$($lines:literal),*]) => { &[$($lines),*] };
    ([$($lines:literal),*] #[doc = $line:literal] $($rest:tt)*) => {
        $crate::__config_doc!([$($lines,)* $line] $($rest)*)
    };
    ([$($lines:literal),*] #[$($attr:tt)*] $($rest:tt)*) => {
        $crate::__config_doc!([$($lines),*] $($rest)*)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    config_section! {
        /// `[demo]`: a section for the tests.
        pub(crate) struct DemoConfig {
            /// Things at most.
            ///
            /// More text.
            pub(crate) max_things: usize = 100,
            /// A name. Second sentence.
            #[serde(rename = "label")]
            pub(crate) name: String = "x".into(),
        }
        validate(self, problems) {
            problems.check(self.max_things > 0, "max_things", "must be positive");
            problems.check(!self.name.is_empty(), "label", "must not be empty");
        }
    }

    #[test]
    fn a_section_knows_its_defaults_and_documentation() {
        let d = DemoConfig::default();
        assert_eq!((d.max_things, d.name.as_str()), (100, "x"));
        assert_eq!(DemoConfig::DOC, &[" `[demo]`: a section for the tests."]);
        let names: Vec<_> = DemoConfig::FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(names, ["max_things", "name"]);
        assert_eq!(DemoConfig::FIELDS[0].doc.len(), 3);
        assert_eq!(DemoConfig::FIELDS[1].summary(), "A name.");
        assert_eq!(DemoConfig::FIELDS[0].summary(), "Things at most.");
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let bad = DemoConfig {
            max_things: 0,
            name: String::new(),
        };
        let mut problems = Problems::new("demo");
        bad.validate(&mut problems);
        let found: Vec<String> = problems.into_vec().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            found,
            [
                "demo.max_things: must be positive",
                "demo.label: must not be empty"
            ]
        );
    }
}
