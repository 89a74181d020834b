//! Property tests for exposed tool names.
//!
//! - An OpenAI alias always matches `^[a-zA-Z0-9_-]{1,64}$` and is a pure function of its input.
//! - For any set of capability names (long ones, punctuation twins such as `a.b` and `a._b`,
//!   names that are other names' aliases), in every alias mode: exposed names are unique, each
//!   resolves to the capability it was listed for, every capability is listed, and the listing is
//!   the same when built twice.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use proptest::prelude::*;
use synapsor_core::tools::{AliasMode, ToolNames, is_openai_tool_name, openai_alias};

fn openai_regex(s: &str) -> bool {
    // Written out independently of `is_openai_tool_name`, which is also checked against it.
    let n = s.chars().count();
    (1..=64).contains(&n) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Capability-like names: `ns.name` with parts drawn from a small alphabet so that collisions
/// happen often, plus long names and arbitrary text.
fn cap_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[ab_]{1,3}", "[ab_.]{1,3}").prop_map(|(ns, n)| format!("{ns}.{n}")),
        2 => ("[a-z][a-z_]{0,8}", "[a-z][a-z0-9_]{0,8}").prop_map(|(ns, n)| format!("{ns}.{n}")),
        1 => ("[a-z]{1,3}", "[a-z_]{60,90}").prop_map(|(ns, n)| format!("{ns}.{n}")),
        1 => "[a-z]{1,2}__[a-z]{1,2}",
        1 => "\\PC{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn alias_always_matches_the_openai_rule(name in "\\PC{0,200}") {
        let a = openai_alias(&name);
        prop_assert!(openai_regex(&a), "{name:?} -> {a:?}");
        prop_assert!(is_openai_tool_name(&a));
        prop_assert_eq!(openai_alias(&name), a);
    }

    #[test]
    fn alias_of_a_safe_short_name_is_the_name_itself(name in "[a-zA-Z0-9-][a-zA-Z0-9-]{0,20}") {
        prop_assert_eq!(openai_alias(&name), name);
    }

    #[test]
    fn exposed_names_are_unique_and_resolve(names in proptest::collection::vec(cap_name(), 0..12)) {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let distinct: HashSet<&str> = refs.iter().copied().collect();
        for mode in AliasMode::ALL {
            let built = ToolNames::build(&refs, mode);
            prop_assert_eq!(&built, &ToolNames::build(&refs, mode));
            let mut seen = HashSet::new();
            for t in built.tools() {
                prop_assert!(seen.insert(t.exposed.as_str()), "duplicate {:?} in {:?}", t.exposed, mode);
                prop_assert_eq!(built.resolve(&t.exposed), Some(t.canonical.as_str()));
                prop_assert!(distinct.contains(t.canonical.as_str()));
                if mode != AliasMode::Canonical && t.is_alias() {
                    prop_assert!(openai_regex(&t.exposed), "{:?}", t.exposed);
                }
            }
            let listed: HashSet<&str> = built.tools().iter().map(|t| t.canonical.as_str()).collect();
            prop_assert_eq!(&listed, &distinct);
            match mode {
                AliasMode::Canonical => {
                    prop_assert_eq!(built.len(), distinct.len());
                    prop_assert!(built.tools().iter().all(|t| !t.is_alias()));
                }
                AliasMode::Openai => {
                    prop_assert_eq!(built.len(), distinct.len());
                    prop_assert!(built.exposed_names().all(openai_regex));
                }
                AliasMode::Both => {
                    // Canonical first, then its alias (unless the name is its own alias).
                    for c in &distinct {
                        let own: Vec<&str> = built
                            .tools()
                            .iter()
                            .filter(|t| t.canonical == *c)
                            .map(|t| t.exposed.as_str())
                            .collect();
                        prop_assert_eq!(own[0], *c);
                        prop_assert_eq!(own.len(), if openai_alias(c) == *c { 1 } else { 2 });
                    }
                }
            }
        }
    }

    #[test]
    fn unlisted_names_do_not_resolve(names in proptest::collection::vec(cap_name(), 1..6), probe in "\\PC{0,20}") {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let built = ToolNames::build(&refs, AliasMode::Both);
        let listed = built.exposed_names().any(|n| n == probe);
        prop_assert_eq!(built.resolve(&probe).is_some(), listed);
    }
}

#[test]
fn first_capability_keeps_the_plain_alias() {
    // `a.b` and `a._b` alias alike (`a__b`); whichever comes first keeps it.
    let a = ToolNames::build(&["a.b", "a._b"], AliasMode::Openai);
    let b = ToolNames::build(&["a._b", "a.b"], AliasMode::Openai);
    assert_eq!(a.alias_of("a.b"), Some("a__b"));
    assert_eq!(b.alias_of("a._b"), Some("a__b"));
    assert_ne!(a.alias_of("a._b"), Some("a__b"));
    for built in [a, b] {
        let names: Vec<&str> = built.exposed_names().collect();
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|n| openai_regex(n)));
    }
}

#[test]
fn many_long_names_sharing_a_prefix_stay_distinct() {
    let prefix = "x".repeat(70);
    let names: Vec<String> = (0..50).map(|i| format!("ns.{prefix}{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let built = ToolNames::build(&refs, AliasMode::Openai);
    let set: HashSet<&str> = built.exposed_names().collect();
    assert_eq!(set.len(), 50);
    assert!(set.iter().all(|n| n.len() <= 64 && openai_regex(n)));
}
