//! The approval rules every decider shares: who counts as the same person, and how many
//! approvals a change set needs. The ledger (local approvals), the apply plan
//! (`synapsor-executor`) and the controller's webhook and reconciler all use these two functions,
//! so a rule cannot drift between local and Kubernetes mode.

/// Whether two approver or proposer names are the same person: compared trimmed and
/// ASCII-case-insensitively. This is the strict reading for every use it has: `Alice` may not
/// approve what `alice` proposed, and `Alice` and `alice` count as one approver towards a quorum.
/// Kubernetes user names are case-sensitive, but treating two names that differ only in case as
/// one person can only refuse an approval, never admit one.
pub fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The approvals a change set needs now: the most of what it was proposed with and what the
/// current reviewed capability requires (`None` when the capability is gone), and at least one.
/// Raising `required_approvals` in the config therefore applies to proposals already made;
/// lowering it does not lower what they were proposed with.
pub fn required_approvals(proposed: u32, current: Option<u32>) -> usize {
    proposed.max(current.unwrap_or(0)).max(1) as usize
}

/// The distinct people among `approvers` (by [`same_person`]), first occurrence kept, in order,
/// leaving out `proposer`. `name` reads the approver's name from an item.
pub fn distinct_approvers<T>(
    approvers: impl IntoIterator<Item = T>,
    proposer: &str,
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for a in approvers {
        let who = name(&a);
        if who.trim().is_empty() || same_person(who, proposer) || out.iter().any(|b| same_person(name(b), who)) {
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_person_ignores_case_and_surrounding_space_only() {
        assert!(same_person("alice", " Alice "));
        assert!(same_person("system:serviceaccount:ns:x", "System:ServiceAccount:ns:X"));
        assert!(!same_person("alice", "alice2"));
        assert!(!same_person("al ice", "alice"));
    }

    #[test]
    fn required_approvals_is_the_stricter_of_proposal_and_config_and_at_least_one() {
        assert_eq!(required_approvals(1, Some(2)), 2);
        assert_eq!(required_approvals(3, Some(1)), 3);
        assert_eq!(required_approvals(2, None), 2);
        assert_eq!(required_approvals(0, None), 1);
        assert_eq!(required_approvals(0, Some(0)), 1);
    }

    #[test]
    fn distinct_approvers_drop_repeats_blanks_and_the_proposer() {
        let got = distinct_approvers(["bob", "Bob ", "agent", "", "carol", "bob"], "AGENT", |s| s);
        assert_eq!(got, ["bob", "carol"]);
    }
}
