//! The admission webhook on any AdmissionReview, and the decision annotations on any text: a
//! decision never panics, and a parsed approval or rejection never verifies without the key.
#![no_main]

use kube::core::admission::{AdmissionRequest, AdmissionReview};
use libfuzzer_sys::fuzz_target;
use synapsor_controller::admission::check;
use synapsor_controller::decisions::{DecisionKey, parse_approvals, parse_rejection};
use synapsor_kube::Proposal;

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = serde_json::from_slice::<AdmissionReview<Proposal>>(data) {
        let request: Result<AdmissionRequest<Proposal>, _> = review.try_into();
        if let Ok(request) = request {
            let now = i64::try_from(data.len()).unwrap_or(0) * 1_000_000_007;
            let _ = check(&request, now);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let text = text.to_owned();
    let key = DecisionKey::from_file_bytes(b"0123456789abcdef0123456789abcdef\n").expect("a valid key");
    if let Ok(list) = parse_approvals(Some(&text)) {
        assert!(list.iter().all(|d| !key.verify("uid-1", "sha256:x", d)));
    }
    if let Ok(Some(d)) = parse_rejection(Some(&text)) {
        assert!(!key.verify("uid-1", "sha256:x", &d));
    }
});
