//! The `[alerting]` configuration (receivers, routes, inhibition,
//! maintenance windows, scaling), parsed and checked as at start and at
//! every reload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smolder_alerting::AlertingConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<AlertingConfig>(text) {
        let _ = config.check();
    }
});
