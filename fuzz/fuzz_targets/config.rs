//! The config validator on any bytes: a config either parses and compiles, or is refused with
//! coded errors; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapsor_core::capability::compile;
use synapsor_core::config::parse_config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_config(text) {
        Ok((cfg, _warnings)) => {
            let _ = compile(&cfg);
        }
        Err(report) => assert!(!report.errors.is_empty(), "a refusal names at least one error"),
    }
});
