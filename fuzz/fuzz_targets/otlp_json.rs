//! OTLP/JSON export requests decoded and converted to Arrow; the first byte
//! picks the signal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smolder_ingest::{convert, json};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => {
            if let Ok(r) = json::decode_traces(body) {
                let _ = convert::spans(&r);
            }
        }
        1 => {
            if let Ok(r) = json::decode_logs(body) {
                let _ = convert::logs(&r);
            }
        }
        _ => {
            if let Ok(r) = json::decode_metrics(body) {
                let _ = convert::metrics(&r);
            }
        }
    }
});
