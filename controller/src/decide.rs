//! What the reconciler does next with a proposal: a pure function of what it observed.
//!
//! [`decide`] takes the proposal's status, its verified rejection, the [`Quorum`] of its verified
//! approvals, the verdict of [`synapsor_executor::plan_apply`] on the current config, its expiry
//! and the time, and answers one [`Step`]. It does no IO, so every rule is a table test below;
//! [`crate::reconcile`] carries the step out (status writes, the ledger, the executor, Events).

use std::time::Duration;

use synapsor_executor::{ApplyRefusal, Quorum};
use synapsor_kube::{Phase, ProposalStatus};

/// Attempts at an apply that fails without writing, before the proposal stays `Failed`.
pub const MAX_ATTEMPTS: u32 = 5;

/// The first pause after a failed attempt (`synapsor-controller run --retry-pause-secs`).
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// The pause before attempt `n + 1`, doubling from `first`: 10 s, 20 s, 40 s, 80 s by default.
pub fn retry_pause(first: Duration, failed_attempts: u32) -> Duration {
    first.saturating_mul(1u32 << failed_attempts.saturating_sub(1).min(6))
}

/// The longest the reconciler sleeps on a pending proposal before looking again.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What the reconciler observed about one proposal.
#[derive(Debug)]
pub struct Observed<'a> {
    pub status: &'a ProposalStatus,
    /// Whether a verified (signed) rejection is recorded.
    pub rejected: bool,
    /// The verified approvals that count and how many are required.
    pub quorum: &'a Quorum,
    /// [`synapsor_executor::plan_apply`] on the current config: may it be applied now?
    pub plan: Result<(), ApplyRefusal>,
    /// `spec.expiresAt` in Unix milliseconds (`None` when it does not parse: expired).
    pub expires_at_ms: Option<i64>,
    pub now_ms: i64,
}

/// The next step for one proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do until the object changes: a final phase, or a failed one whose attempts are
    /// spent (only a rejection still changes it).
    Done,
    /// The proposal itself can never be applied (changed after it was proposed, or a shadow
    /// proposal): `Failed` for good, without a retry.
    Close(ApplyRefusal),
    /// A verified rejection: `Rejected`.
    Reject,
    /// A failed attempt waits until its next attempt is due.
    BackOff(Duration),
    /// Not applied before `expiresAt`: `Expired`.
    Expire,
    /// Fewer verified approvals than required: stay `Pending`, and look again at expiry at the
    /// latest.
    AwaitApprovals(Duration),
    /// The current config refuses the apply: `Failed`, retried after a pause (the config may be
    /// fixed in between).
    Refuse(ApplyRefusal),
    /// Apply: `Applying` (a compare-and-set), then the executor. `resume`
    /// is an apply that a controller started and did not finish: the same idempotency key makes
    /// running it again safe.
    Apply { resume: bool },
}

/// Decides the next step; see [`Step`] for what each means. The order matters and is the
/// contract: final phases first, then what makes the proposal itself unusable, a rejection, a
/// pending retry, expiry, the quorum, and last the current config's verdict.
pub fn decide(o: &Observed<'_>) -> Step {
    let phase = o.status.phase.unwrap_or(Phase::Pending);
    match phase {
        Phase::Applied | Phase::Conflict | Phase::Rejected | Phase::Expired => return Step::Done,
        Phase::Failed if o.status.attempts >= MAX_ATTEMPTS && !o.rejected => return Step::Done,
        _ => {}
    }
    if let Err(refusal) = &o.plan
        && refusal.is_permanent()
    {
        return Step::Close(refusal.clone());
    }
    if phase == Phase::Applying {
        // An apply was started; a rejection or expiry that came later cannot stop it safely.
        return match &o.plan {
            Ok(()) => Step::Apply { resume: true },
            Err(refusal) => Step::Refuse(refusal.clone()),
        };
    }
    if o.rejected {
        return Step::Reject;
    }
    if phase == Phase::Failed
        && let Some(at) = o
            .status
            .next_attempt_at
            .as_deref()
            .and_then(synapsor_core::time::parse_rfc3339_ms)
        && at > o.now_ms
    {
        return Step::BackOff(Duration::from_millis(u64::try_from(at - o.now_ms).unwrap_or(0) + 100));
    }
    let expires = o.expires_at_ms.unwrap_or(i64::MIN);
    if o.now_ms >= expires {
        return Step::Expire;
    }
    if !o.quorum.reached() {
        let left = Duration::from_millis(u64::try_from(expires - o.now_ms).unwrap_or(0));
        return Step::AwaitApprovals(left.min(MAX_WAIT) + Duration::from_millis(500));
    }
    match &o.plan {
        Ok(()) => Step::Apply { resume: false },
        Err(refusal) => Step::Refuse(refusal.clone()),
    }
}

#[cfg(test)]
mod tests {
    use synapsor_executor::Approval;

    use super::*;

    const NOW: i64 = 1_782_205_200_000;

    fn quorum(have: usize, required: usize) -> Quorum {
        Quorum {
            approvals: (0..have)
                .map(|i| Approval {
                    approver: format!("user{i}"),
                    approved_at: "2026-06-23T09:00:00.000Z".into(),
                })
                .collect(),
            required,
        }
    }

    fn status(phase: Option<Phase>, attempts: u32, next_attempt_in_ms: Option<i64>) -> ProposalStatus {
        ProposalStatus {
            phase,
            attempts,
            next_attempt_at: next_attempt_in_ms.map(|ms| synapsor_core::time::format_rfc3339_ms(NOW + ms)),
            ..ProposalStatus::default()
        }
    }

    struct Case {
        name: &'static str,
        status: ProposalStatus,
        rejected: bool,
        quorum: (usize, usize),
        plan: Result<(), ApplyRefusal>,
        expires_in_ms: Option<i64>,
        want: Step,
    }

    fn case(name: &'static str, status: ProposalStatus, want: Step) -> Case {
        Case {
            name,
            status,
            rejected: false,
            quorum: (1, 1),
            plan: Ok(()),
            expires_in_ms: Some(60_000),
            want,
        }
    }

    #[test]
    fn the_next_step_for_each_situation() {
        let shadow = ApplyRefusal::ShadowProposal { id: "p".into() };
        let read_only = ApplyRefusal::ReadOnlyMode;
        let pending = || status(None, 0, None);
        let cases = vec![
            case(
                "applied stays applied",
                status(Some(Phase::Applied), 0, None),
                Step::Done,
            ),
            case("conflict is final", status(Some(Phase::Conflict), 0, None), Step::Done),
            case("rejected is final", status(Some(Phase::Rejected), 0, None), Step::Done),
            case("expired is final", status(Some(Phase::Expired), 0, None), Step::Done),
            case(
                "failed with its attempts spent waits for a change",
                status(Some(Phase::Failed), MAX_ATTEMPTS, None),
                Step::Done,
            ),
            Case {
                rejected: true,
                ..case(
                    "failed with its attempts spent can still be rejected",
                    status(Some(Phase::Failed), MAX_ATTEMPTS, None),
                    Step::Reject,
                )
            },
            Case {
                plan: Err(shadow.clone()),
                rejected: true,
                ..case(
                    "a shadow proposal is closed for good, even when rejected",
                    pending(),
                    Step::Close(shadow.clone()),
                )
            },
            Case {
                rejected: true,
                ..case("a verified rejection rejects", pending(), Step::Reject)
            },
            Case {
                rejected: true,
                ..case(
                    "an interrupted apply is resumed, not rejected",
                    status(Some(Phase::Applying), 0, None),
                    Step::Apply { resume: true },
                )
            },
            Case {
                expires_in_ms: Some(-1),
                ..case(
                    "an interrupted apply is resumed after expiry",
                    status(Some(Phase::Applying), 0, None),
                    Step::Apply { resume: true },
                )
            },
            Case {
                plan: Err(read_only.clone()),
                ..case(
                    "an interrupted apply the config now refuses",
                    status(Some(Phase::Applying), 0, None),
                    Step::Refuse(read_only.clone()),
                )
            },
            case(
                "a failed attempt waits for its next attempt",
                status(Some(Phase::Failed), 1, Some(5_000)),
                Step::BackOff(Duration::from_millis(5_100)),
            ),
            case(
                "a failed attempt that is due is applied again",
                status(Some(Phase::Failed), 1, Some(-1)),
                Step::Apply { resume: false },
            ),
            Case {
                expires_in_ms: Some(0),
                ..case("expires at expiresAt", pending(), Step::Expire)
            },
            Case {
                expires_in_ms: None,
                ..case("an unreadable expiry counts as expired", pending(), Step::Expire)
            },
            Case {
                quorum: (1, 2),
                ..case(
                    "waits for approvals until expiry",
                    pending(),
                    Step::AwaitApprovals(Duration::from_millis(60_500)),
                )
            },
            Case {
                quorum: (0, 1),
                expires_in_ms: Some(10 * 3_600_000),
                ..case(
                    "looks again within the hour",
                    pending(),
                    Step::AwaitApprovals(Duration::from_millis(3_600_500)),
                )
            },
            Case {
                quorum: (0, 1),
                plan: Err(read_only.clone()),
                ..case(
                    "a config refusal waits for the quorum first",
                    pending(),
                    Step::AwaitApprovals(Duration::from_millis(60_500)),
                )
            },
            Case {
                plan: Err(read_only.clone()),
                ..case(
                    "with its quorum, a config refusal fails the attempt",
                    pending(),
                    Step::Refuse(read_only.clone()),
                )
            },
            case(
                "with its quorum it is applied",
                pending(),
                Step::Apply { resume: false },
            ),
            case(
                "an approved proposal is applied",
                status(Some(Phase::Approved), 0, None),
                Step::Apply { resume: false },
            ),
        ];
        for c in cases {
            let q = quorum(c.quorum.0, c.quorum.1);
            let got = decide(&Observed {
                status: &c.status,
                rejected: c.rejected,
                quorum: &q,
                plan: c.plan,
                expires_at_ms: c.expires_in_ms.map(|ms| NOW + ms),
                now_ms: NOW,
            });
            assert_eq!(got, c.want, "{}", c.name);
        }
    }

    #[test]
    fn retry_pauses_double() {
        let secs: Vec<u64> = (1..=5).map(|n| retry_pause(DEFAULT_RETRY_PAUSE, n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160]);
        assert_eq!(retry_pause(Duration::from_secs(1), 3), Duration::from_secs(4));
    }
}
