//! The SQL API's sandbox: what it admits must parse, and nothing may make it
//! panic or recurse without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smolder_query::sandbox::{Limits, check};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let _ = check(sql, Limits::default());
});
