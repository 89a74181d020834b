//! The onboarding answers file on any text: a selection, or an error with an `ONBOARD_` code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapsor_onboard::Selection;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Selection::from_answers(text) {
        assert!(e.code.starts_with("ONBOARD_"), "{}", e.code);
    }
});
