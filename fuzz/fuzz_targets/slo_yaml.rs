//! SLO files (OpenSLO v1 and Sloth prometheus/v1, one or more YAML
//! documents), as `smolder slo validate` and the API read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smolder_slo::model::Origin;
use smolder_slo::spec::{Defaults, load_texts};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = load_texts(
        &[("fuzz.yaml".into(), text)],
        Defaults::default(),
        &Origin::Api,
    );
});
