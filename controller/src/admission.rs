//! The mutating admission webhook for `proposals`: who may approve, and the records of it.
//!
//! On CREATE it refuses decision or webhook-owned annotations (nobody creates a pre-approved
//! proposal), checks the spec's digest, and stamps the creator as the proposer. On UPDATE it
//! refuses any spec change and any write to the webhook-owned annotations; an `approve` or
//! `reject` annotation is admitted only from a user a SubjectAccessReview allows the verb
//! `approve` on that proposal, never from its proposer, only while the proposal is open and
//! unexpired. An admitted decision is consumed: the annotation is removed and a signed record
//! ([`crate::decisions`]) is appended where only this webhook writes. Status is a subresource
//! and is not seen here; RBAC gives it to the controller alone.

use json_patch::Patch;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::{Value, json};
use synapsor_core::approval::same_person;
use synapsor_kube::{
    ANNOTATION_APPROVALS, ANNOTATION_APPROVE, ANNOTATION_PROPOSER, ANNOTATION_REJECT, ANNOTATION_REJECTION, GROUP,
    Phase, Proposal, WEBHOOK_OWNED,
};

use crate::decisions::{DecisionKey, SignedDecision, parse_approvals, parse_rejection};
use crate::error::DecisionParseError;

/// A decision the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Approve,
    Reject(String),
}

/// What to do with a request before any authorization check.
#[derive(Debug, PartialEq)]
pub enum Check {
    Allow,
    Deny(String),
    /// A CREATE to admit with this patch (the proposer stamp).
    AllowWithPatch(Value),
    /// An UPDATE asking for a decision: allowed only if the user may `approve`.
    NeedsApprover(Requested),
}

fn annotations(p: &Proposal) -> std::collections::BTreeMap<String, String> {
    p.metadata.annotations.clone().unwrap_or_default()
}

/// A JSON pointer to an annotation (`/` in keys is `~1`).
fn pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The checks that need no API call. `now_ms` is the webhook's clock.
pub fn check(req: &AdmissionRequest<Proposal>, now_ms: i64) -> Check {
    let user = req.user_info.username.clone().unwrap_or_default();
    if user.is_empty() {
        return Check::Deny("the request has no authenticated user".into());
    }
    match req.operation {
        Operation::Create => {
            let Some(new) = &req.object else {
                return Check::Deny("the request carries no object".into());
            };
            let ann = annotations(new);
            for key in [ANNOTATION_APPROVE, ANNOTATION_REJECT]
                .iter()
                .chain(WEBHOOK_OWNED.iter())
            {
                if ann.contains_key(*key) {
                    return Check::Deny(format!(
                        "{key} cannot be set when a proposal is created: proposals start pending and are decided by approvers"
                    ));
                }
            }
            if !new.spec.to_change_set().digest_is_intact() {
                return Check::Deny("spec.digest does not match the spec: the change set was altered".into());
            }
            if synapsor_core::time::parse_rfc3339_ms(&new.spec.expires_at).is_none() {
                return Check::Deny("spec.expiresAt is not an RFC 3339 UTC timestamp".into());
            }
            let patch = if new.metadata.annotations.is_none() {
                json!([{"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_PROPOSER: user}}])
            } else {
                json!([{"op": "add", "path": pointer(ANNOTATION_PROPOSER), "value": user}])
            };
            Check::AllowWithPatch(patch)
        }
        Operation::Update => {
            let (Some(old), Some(new)) = (&req.old_object, &req.object) else {
                return Check::Deny("the request carries no object".into());
            };
            if old.spec != new.spec {
                return Check::Deny("the spec of a proposal is immutable; propose again instead".into());
            }
            let (old_ann, new_ann) = (annotations(old), annotations(new));
            for key in WEBHOOK_OWNED {
                if old_ann.get(key) != new_ann.get(key) {
                    return Check::Deny(format!("{key} is written only by the admission webhook"));
                }
            }
            let approve = new_ann.get(ANNOTATION_APPROVE);
            let reject = new_ann.get(ANNOTATION_REJECT);
            let requested = match (approve, reject) {
                (None, None) => return Check::Allow,
                (Some(_), Some(_)) => {
                    return Check::Deny(format!(
                        "set either {ANNOTATION_APPROVE} or {ANNOTATION_REJECT}, not both"
                    ));
                }
                (Some(v), None) if v == "true" => Requested::Approve,
                (Some(v), None) => {
                    return Check::Deny(format!("{ANNOTATION_APPROVE} must be \"true\", not {v:?}"));
                }
                (None, Some(reason)) if reason.trim().is_empty() => {
                    return Check::Deny(format!("{ANNOTATION_REJECT} needs a reason as its value"));
                }
                (None, Some(reason)) => Requested::Reject(reason.trim().to_owned()),
            };
            let phase = old.status.as_ref().and_then(|s| s.phase).unwrap_or(Phase::Pending);
            let open = match requested {
                Requested::Approve => phase == Phase::Pending,
                // A failed apply wrote nothing and is retried: it can still be stopped.
                Requested::Reject(_) => matches!(phase, Phase::Pending | Phase::Approved | Phase::Failed),
            };
            if !open {
                return Check::Deny(format!("the proposal is {phase}; it can no longer be decided"));
            }
            match synapsor_core::time::parse_rfc3339_ms(&old.spec.expires_at) {
                Some(exp) if exp > now_ms => {}
                _ => return Check::Deny(format!("the proposal expired at {}", old.spec.expires_at)),
            }
            if let Some(role) = old.spec.required_role.as_deref().filter(|r| !r.is_empty()) {
                let groups = req.user_info.groups.clone().unwrap_or_default();
                if !groups.iter().any(|g| g == role) {
                    return Check::Deny(format!(
                        "{user} is not in the group {role:?} this capability requires of its approvers (approval.required_role)"
                    ));
                }
            }
            if requested == Requested::Approve {
                let Some(proposer) = old_ann.get(ANNOTATION_PROPOSER) else {
                    return Check::Deny(
                        "the proposal has no verified proposer (it was created without this webhook); propose again"
                            .into(),
                    );
                };
                if same_person(proposer, &user) {
                    return Check::Deny(format!("{user} proposed this proposal and cannot approve it"));
                }
                match parse_approvals(old_ann.get(ANNOTATION_APPROVALS)) {
                    Ok(list) if list.iter().any(|d| same_person(&d.user, &user)) => {
                        return Check::Deny(format!("{user} has already approved this proposal"));
                    }
                    Ok(_) => {}
                    Err(e) => return Check::Deny(e.to_string()),
                }
            }
            Check::NeedsApprover(requested)
        }
        _ => Check::Allow,
    }
}

/// Why an admitted decision could not be recorded (the request is denied with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the request carries no object")]
    NoObject,
    #[error(transparent)]
    Unreadable(#[from] DecisionParseError),
    #[error("the proposal is already rejected")]
    AlreadyRejected,
    #[error("the decision could not be encoded")]
    Encode,
}

/// The patch recording an admitted decision: the request annotation is consumed and a signed
/// record appended to (or set as) the webhook-owned annotation.
pub fn decision_patch(
    req: &AdmissionRequest<Proposal>,
    requested: &Requested,
    key: &DecisionKey,
    now: &str,
) -> Result<Value, PatchError> {
    let (Some(old), Some(new)) = (&req.old_object, &req.object) else {
        return Err(PatchError::NoObject);
    };
    let user = req.user_info.username.clone().unwrap_or_default();
    let uid = old.metadata.uid.clone().unwrap_or_default();
    let digest = &old.spec.digest;
    let old_ann = annotations(old);
    match requested {
        Requested::Approve => {
            let mut list = parse_approvals(old_ann.get(ANNOTATION_APPROVALS))?;
            list.push(key.sign(&uid, digest, &user, now, None));
            let value = serde_json::to_string(&list).map_err(|_| PatchError::Encode)?;
            let op = if annotations(new).contains_key(ANNOTATION_APPROVALS) {
                "replace"
            } else {
                "add"
            };
            Ok(json!([
                {"op": "remove", "path": pointer(ANNOTATION_APPROVE)},
                {"op": op, "path": pointer(ANNOTATION_APPROVALS), "value": value},
            ]))
        }
        Requested::Reject(reason) => {
            if parse_rejection(old_ann.get(ANNOTATION_REJECTION))?.is_some() {
                return Err(PatchError::AlreadyRejected);
            }
            let d: SignedDecision = key.sign(&uid, digest, &user, now, Some(reason));
            let value = serde_json::to_string(&d).map_err(|_| PatchError::Encode)?;
            Ok(json!([
                {"op": "remove", "path": pointer(ANNOTATION_REJECT)},
                {"op": "add", "path": pointer(ANNOTATION_REJECTION), "value": value},
            ]))
        }
    }
}

/// Asks the API server whether the request's user may `approve` this proposal.
pub async fn may_approve(client: &kube::Client, req: &AdmissionRequest<Proposal>) -> Result<bool, kube::Error> {
    let u = &req.user_info;
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: u.username.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: u.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some("proposals".to_owned()),
                verb: Some("approve".to_owned()),
                namespace: req.namespace.clone(),
                name: Some(req.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let out = api.create(&PostParams::default(), &sar).await?;
    Ok(out.status.is_some_and(|s| s.allowed && !s.denied.unwrap_or(false)))
}

/// The outcome of one review, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Decided,
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Decided => "decision_recorded",
            Verdict::Denied => "denied",
        }
    }
}

/// The request of one raw `AdmissionReview` body, or the review that refuses a body that does
/// not parse (`what` names the object in the message). Fails closed.
pub fn read_request<T>(body: Value, what: &str) -> Result<AdmissionRequest<T>, Box<AdmissionReview<DynamicObject>>>
where
    T: kube::Resource + serde::de::DeserializeOwned,
{
    let uid = body
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let refuse = |reason: String| {
        let mut resp = AdmissionResponse::invalid(reason.clone());
        resp.uid = uid.clone();
        Box::new(resp.deny(reason).into_review())
    };
    let review: AdmissionReview<T> =
        serde_json::from_value(body).map_err(|e| refuse(format!("the {what} could not be read: {e}")))?;
    review
        .try_into()
        .map_err(|_| refuse("the admission review has no request".into()))
}

/// `resp` admitting the object with a JSON `patch` (true), or refusing it when the patch cannot
/// be encoded (false).
pub fn with_json_patch(resp: AdmissionResponse, patch: Value) -> (AdmissionReview<DynamicObject>, bool) {
    match serde_json::from_value::<Patch>(patch)
        .map_err(|e| e.to_string())
        .and_then(|p| resp.clone().with_patch(p).map_err(|e| e.to_string()))
    {
        Ok(r) => (r.into_review(), true),
        Err(e) => (
            resp.deny(format!("internal error building the patch: {e}"))
                .into_review(),
            false,
        ),
    }
}

/// Reviews one raw `AdmissionReview` body and returns the response review. Fails closed: a
/// body that does not parse, or an API error during authorization, is a denial.
pub async fn review(
    client: &kube::Client,
    key: &DecisionKey,
    body: Value,
    now_ms: i64,
) -> (AdmissionReview<DynamicObject>, Verdict) {
    let req: AdmissionRequest<Proposal> = match read_request(body, "proposal") {
        Ok(r) => r,
        Err(denied) => return (*denied, Verdict::Denied),
    };
    let allow = AdmissionResponse::from(&req);
    let with_patch = |resp: AdmissionResponse, patch: Value, verdict: Verdict| match with_json_patch(resp, patch) {
        (review, true) => (review, verdict),
        (denied, false) => (denied, Verdict::Denied),
    };
    match check(&req, now_ms) {
        Check::Allow => (allow.into_review(), Verdict::Allowed),
        Check::Deny(reason) => (allow.deny(reason).into_review(), Verdict::Denied),
        Check::AllowWithPatch(patch) => with_patch(allow, patch, Verdict::Allowed),
        Check::NeedsApprover(requested) => {
            let user = req.user_info.username.clone().unwrap_or_default();
            match may_approve(client, &req).await {
                Ok(true) => {}
                Ok(false) => {
                    let ns = req.namespace.clone().unwrap_or_default();
                    return (
                        allow
                            .deny(format!(
                                "{user} may not decide proposals in namespace {ns}: RBAC does not allow the verb \"approve\" on proposals.{GROUP}"
                            ))
                            .into_review(),
                        Verdict::Denied,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SubjectAccessReview failed");
                    return (
                        allow
                            .deny("the approver could not be authorized (SubjectAccessReview failed); try again")
                            .into_review(),
                        Verdict::Denied,
                    );
                }
            }
            let now = synapsor_core::time::format_rfc3339_ms(now_ms);
            match decision_patch(&req, &requested, key, &now) {
                Ok(patch) => {
                    tracing::info!(
                        proposal = %req.name,
                        namespace = req.namespace.as_deref().unwrap_or(""),
                        %user,
                        decision = if requested == Requested::Approve { "approve" } else { "reject" },
                        "decision admitted"
                    );
                    with_patch(allow, patch, Verdict::Decided)
                }
                Err(reason) => (allow.deny(reason.to_string()).into_review(), Verdict::Denied),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use synapsor_kube::{ProposalSpec, ProposalStatus};

    fn spec() -> ProposalSpec {
        let mut cs: synapsor_core::ChangeSet = serde_json::from_value(json!({
            "schema_version": "synapsor.change-set.v1", "proposal_id": "wrp_1", "mode": "review_required",
            "action": "billing.propose", "principal": {"id": "agent", "source": "env"},
            "scope": {"tenant_id": "acme", "business_object": "invoices", "object_id": "1"},
            "source": {"source_id": "billing", "engine": "external_postgres", "schema": "public",
                        "table": "invoices", "primary_key": {"column": "id", "value": 1}},
            "before": {}, "patch": {"fee": 0}, "after": {"fee": 0},
            "guards": {"allowed_columns": ["fee"], "expected_version": {"column": "version", "value": 1}},
            "writeback": {"executor": "sql_update"}, "approval": {"required_approvals": 1},
            "evidence": {"bundle_id": "ev", "query_fingerprint": "fp"},
            "created_at": "2026-11-25T10:00:00Z", "digest": ""
        }))
        .unwrap();
        cs.digest = cs.compute_digest();
        ProposalSpec::from_change_set(&cs, "2026-11-26T10:00:00Z".into())
    }

    const NOW: i64 = 1_795_600_000_000; // 2026-11-25T... before expiry

    fn proposal(ann: &[(&str, &str)], phase: Option<Phase>) -> Proposal {
        let mut p = Proposal::new("wrp-1", spec());
        p.metadata.namespace = Some("team".into());
        p.metadata.uid = Some("uid-1".into());
        if !ann.is_empty() {
            p.metadata.annotations = Some(ann.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        }
        p.status = phase.map(|ph| ProposalStatus {
            phase: Some(ph),
            ..Default::default()
        });
        p
    }

    /// `p` with the annotation `key: "true"` added (a decision request).
    fn with_annotation(p: &Proposal, key: &str) -> Proposal {
        let mut p = p.clone();
        p.metadata
            .annotations
            .get_or_insert_default()
            .insert(key.into(), "true".into());
        p
    }

    fn request(op: &str, user: &str, old: Option<&Proposal>, new: &Proposal) -> AdmissionRequest<Proposal> {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "req-1",
                "kind": {"group": GROUP, "version": "v1alpha1", "kind": "Proposal"},
                "resource": {"group": GROUP, "version": "v1alpha1", "resource": "proposals"},
                "name": "wrp-1", "namespace": "team", "operation": op,
                "userInfo": {"username": user, "groups": ["system:authenticated"]},
                "object": new, "oldObject": old, "dryRun": false
            }
        });
        let r: AdmissionReview<Proposal> = serde_json::from_value(review).unwrap();
        r.try_into().unwrap()
    }

    proptest::proptest! {
        // The default config, so PROPTEST_CASES sets the count (scripts/reliability.sh).
        #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]

        /// Whatever annotations a user writes on create, update or delete, the webhook's
        /// decision never panics; a decision it admits is always for an approver's request.
        #[test]
        fn the_webhook_decision_never_panics(
            op in proptest::sample::select(vec!["CREATE", "UPDATE", "DELETE", "CONNECT"]),
            user in "[a-z:]{0,12}",
            old_ann in proptest::collection::vec((annotation_key(), ".{0,40}"), 0..3),
            new_ann in proptest::collection::vec((annotation_key(), ".{0,40}"), 0..4),
            phase in proptest::option::of(proptest::sample::select(Phase::ALL.to_vec())),
            now in proptest::prelude::any::<i64>(),
        ) {
            let old_pairs: Vec<(&str, &str)> = old_ann.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let new_pairs: Vec<(&str, &str)> = new_ann.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let old = proposal(&old_pairs, phase);
            let new = proposal(&new_pairs, phase);
            let req = request(op, &user, (op != "CREATE").then_some(&old), &new);
            let _ = check(&req, now);
        }
    }

    fn annotation_key() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec![
            ANNOTATION_APPROVE.to_owned(),
            ANNOTATION_REJECT.to_owned(),
            ANNOTATION_APPROVALS.to_owned(),
            ANNOTATION_REJECTION.to_owned(),
            ANNOTATION_PROPOSER.to_owned(),
            "team".to_owned(),
        ])
    }

    #[test]
    fn create_stamps_the_proposer_and_refuses_preset_decisions() {
        let p = proposal(&[], None);
        match check(&request("CREATE", "system:serviceaccount:team:runner", None, &p), NOW) {
            Check::AllowWithPatch(patch) => {
                assert_eq!(
                    patch[0]["value"][ANNOTATION_PROPOSER],
                    "system:serviceaccount:team:runner"
                );
            }
            other => panic!("{other:?}"),
        }
        for key in [
            ANNOTATION_APPROVE,
            ANNOTATION_APPROVALS,
            ANNOTATION_PROPOSER,
            ANNOTATION_REJECTION,
        ] {
            let p = proposal(&[(key, "true")], None);
            assert!(
                matches!(check(&request("CREATE", "u", None, &p), NOW), Check::Deny(_)),
                "{key}"
            );
        }
        let mut tampered = proposal(&[], None);
        tampered.spec.patch.insert("fee".into(), json!(999));
        assert!(matches!(check(&request("CREATE", "u", None, &tampered), NOW), Check::Deny(m) if m.contains("digest")));
    }

    #[test]
    fn updates_cannot_touch_the_spec_or_webhook_owned_annotations() {
        let old = proposal(&[(ANNOTATION_PROPOSER, "runner")], None);
        let mut new = old.clone();
        new.spec.tenant = "globex".into();
        assert!(
            matches!(check(&request("UPDATE", "admin", Some(&old), &new), NOW), Check::Deny(m) if m.contains("immutable"))
        );
        for key in WEBHOOK_OWNED {
            let new = proposal(&[(ANNOTATION_PROPOSER, "runner"), (key, "[]")], None);
            let new = if key == ANNOTATION_PROPOSER {
                proposal(&[(key, "admin")], None)
            } else {
                new
            };
            assert!(
                matches!(check(&request("UPDATE", "admin", Some(&old), &new), NOW), Check::Deny(m) if m.contains("only by the admission webhook")),
                "{key}"
            );
        }
        let labelled = old.clone();
        assert_eq!(
            check(&request("UPDATE", "admin", Some(&old), &labelled), NOW),
            Check::Allow
        );
    }

    #[test]
    fn approvals_need_an_open_unexpired_proposal_and_not_the_proposer() {
        let old = proposal(&[(ANNOTATION_PROPOSER, "runner")], None);
        let new = proposal(&[(ANNOTATION_PROPOSER, "runner"), (ANNOTATION_APPROVE, "true")], None);
        assert_eq!(
            check(&request("UPDATE", "alice", Some(&old), &new), NOW),
            Check::NeedsApprover(Requested::Approve)
        );
        assert!(
            matches!(check(&request("UPDATE", "runner", Some(&old), &new), NOW), Check::Deny(m) if m.contains("cannot approve"))
        );
        let late = NOW + 2 * 86_400_000;
        assert!(
            matches!(check(&request("UPDATE", "alice", Some(&old), &new), late), Check::Deny(m) if m.contains("expired"))
        );
        let applied = proposal(&[(ANNOTATION_PROPOSER, "runner")], Some(Phase::Applied));
        assert!(
            matches!(check(&request("UPDATE", "alice", Some(&applied), &new), NOW), Check::Deny(m) if m.contains("Applied"))
        );
        let bad = proposal(&[(ANNOTATION_PROPOSER, "runner"), (ANNOTATION_APPROVE, "yes")], None);
        assert!(matches!(
            check(&request("UPDATE", "alice", Some(&old), &bad), NOW),
            Check::Deny(_)
        ));
        let no_proposer = proposal(&[], None);
        let new2 = proposal(&[(ANNOTATION_APPROVE, "true")], None);
        assert!(
            matches!(check(&request("UPDATE", "alice", Some(&no_proposer), &new2), NOW), Check::Deny(m) if m.contains("verified proposer"))
        );
    }

    #[test]
    fn a_required_role_is_a_group_the_approver_must_be_in() {
        let mut old = proposal(&[(ANNOTATION_PROPOSER, "runner")], None);
        old.spec.required_role = Some("finance-leads".into());
        let new = with_annotation(&old, ANNOTATION_APPROVE);
        // request() authenticates users in system:authenticated only.
        assert!(
            matches!(check(&request("UPDATE", "alice", Some(&old), &new), NOW), Check::Deny(m) if m.contains("finance-leads"))
        );
        let mut req = request("UPDATE", "alice", Some(&old), &new);
        req.user_info.groups = Some(vec!["system:authenticated".into(), "finance-leads".into()]);
        assert_eq!(check(&req, NOW), Check::NeedsApprover(Requested::Approve));
    }

    #[test]
    fn an_admitted_approval_is_consumed_into_a_signed_record() {
        let key = DecisionKey::from_file_bytes(&[7u8; 32]).unwrap();
        let old = proposal(&[(ANNOTATION_PROPOSER, "runner")], None);
        let new = proposal(&[(ANNOTATION_PROPOSER, "runner"), (ANNOTATION_APPROVE, "true")], None);
        let req = request("UPDATE", "alice", Some(&old), &new);
        let patch = decision_patch(&req, &Requested::Approve, &key, "2026-11-25T10:00:00Z").unwrap();
        let mut doc = serde_json::to_value(&new).unwrap();
        json_patch::patch(&mut doc, &serde_json::from_value::<Patch>(patch).unwrap()).unwrap();
        let ann = &doc["metadata"]["annotations"];
        assert!(
            ann.get(ANNOTATION_APPROVE).is_none(),
            "the request annotation is consumed"
        );
        let list = parse_approvals(Some(&ann[ANNOTATION_APPROVALS].as_str().unwrap().to_owned())).unwrap();
        assert_eq!(list.len(), 1);
        assert!(key.verify("uid-1", &old.spec.digest, &list[0]));
        assert_eq!(list[0].user, "alice");

        // The same approver again is refused; another one is appended.
        let old2: Proposal = serde_json::from_value(doc.clone()).unwrap();
        let new2 = with_annotation(&old2, ANNOTATION_APPROVE);
        assert!(
            matches!(check(&request("UPDATE", "alice", Some(&old2), &new2), NOW), Check::Deny(m) if m.contains("already approved"))
        );
        let req = request("UPDATE", "bob", Some(&old2), &new2);
        let patch = decision_patch(&req, &Requested::Approve, &key, "2026-11-25T10:01:00Z").unwrap();
        assert_eq!(patch[1]["op"], "replace");
    }
}
