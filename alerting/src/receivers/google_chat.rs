//! `type = "google_chat"`: a Google Chat space webhook text message.

use serde_json::{Value, json};

/// Its settings: a URL and a text template, like the other plain chat kinds.
pub use super::config::ChatConfig as Config;

use super::truncate;
use crate::render::Texts;

/// Google Chat space webhook: a text message.
pub fn payload(t: &Texts) -> Value {
    json!({ "text": truncate(&format!("*{}*\n{}", t.title, t.text), 4000) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (_, texts) = rendered(status);
            insta::assert_json_snapshot!(format!("google_chat_{status}"), payload(&texts));
        }
    }
}
