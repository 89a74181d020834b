//! Handler signature verification on any header, body, clock and window: nothing unsigned
//! verifies, nothing panics. The input's first line is the header, the rest the body; the
//! first 16 bytes, when present, set the clock and the window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapsor_handler::{KeyRing, verify, verify_signature};

fuzz_target!(|data: &[u8]| {
    let (numbers, rest) = data.split_at(data.len().min(16));
    let mut now = [0u8; 8];
    let mut window = [0u8; 8];
    for (i, b) in numbers.iter().enumerate() {
        if i < 8 { now[i] = *b } else { window[i - 8] = *b }
    }
    let (now, window) = (i64::from_le_bytes(now), u64::from_le_bytes(window));
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let Ok(header) = std::str::from_utf8(&rest[..split]) else {
        return;
    };
    let body = rest.get(split + 1..).unwrap_or_default();
    let keys = KeyRing::single("fuzz-2026", "fuzz-secret-0123456789abcdef0123").expect("a valid key");
    assert!(
        verify_signature(Some(header), body, &keys, now, window).is_err(),
        "an unsigned header verified: {header:?}"
    );
    assert!(verify(Some(header), body, &keys, now, window).is_err());
    let _ = verify_signature(None, body, &keys, now, window);
});
