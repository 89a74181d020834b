//! The proposal state machine: which transitions exist, in one place.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Recorded, waiting for a human decision.
    PendingReview,
    /// Enough approvals; waiting for apply.
    Approved,
    Rejected,
    /// An apply is in progress (written before any side effect).
    Applying,
    Applied,
    /// The row changed after the proposal; a fresh proposal is needed.
    Conflict,
    /// The apply failed without writing; it may be retried.
    Failed,
    Expired,
    /// Shadow-mode proposal: recorded for review, never applied.
    Shadow,
}

impl ProposalState {
    pub const ALL: [ProposalState; 9] = [
        ProposalState::PendingReview,
        ProposalState::Approved,
        ProposalState::Rejected,
        ProposalState::Applying,
        ProposalState::Applied,
        ProposalState::Conflict,
        ProposalState::Failed,
        ProposalState::Expired,
        ProposalState::Shadow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::PendingReview => "pending_review",
            ProposalState::Approved => "approved",
            ProposalState::Rejected => "rejected",
            ProposalState::Applying => "applying",
            ProposalState::Applied => "applied",
            ProposalState::Conflict => "conflict",
            ProposalState::Failed => "failed",
            ProposalState::Expired => "expired",
            ProposalState::Shadow => "shadow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ProposalState::Rejected | ProposalState::Applied | ProposalState::Conflict | ProposalState::Expired
        )
    }

    /// Whether `self -> to` is a legal transition.
    pub fn can_move_to(self, to: ProposalState) -> bool {
        use ProposalState::*;
        matches!(
            (self, to),
            (PendingReview, Approved | Rejected | Expired)
                | (Shadow, Rejected)
                | (Approved, Applying | Rejected | Expired)
                | (Applying, Applied | Conflict | Failed)
                // A failed apply wrote nothing, so it may be retried or given up.
                | (Failed, Applying | Rejected)
        )
    }
}

impl std::fmt::Display for ProposalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_exits() {
        for from in ProposalState::ALL {
            if from.is_terminal() {
                for to in ProposalState::ALL {
                    assert!(!from.can_move_to(to), "{from} -> {to}");
                }
            }
            assert_eq!(ProposalState::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn approval_precedes_apply() {
        assert!(!ProposalState::PendingReview.can_move_to(ProposalState::Applying));
        assert!(ProposalState::Approved.can_move_to(ProposalState::Applying));
        assert!(!ProposalState::Shadow.can_move_to(ProposalState::Approved));
        assert!(ProposalState::Failed.can_move_to(ProposalState::Applying));
    }
}
