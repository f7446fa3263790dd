//! `type = "google_chat"`: a Google Chat space webhook text message.
//! Settings: [`super::config::ChatConfig`].

use serde_json::{Value, json};

use super::truncate;
use crate::render::Texts;

/// Google Chat space webhook: a text message.
pub fn payload(t: &Texts) -> Value {
    json!({ "text": truncate(&format!("*{}*\n{}", t.title, t.text), 4000) })
}
