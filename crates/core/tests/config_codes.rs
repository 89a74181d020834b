//! The list of codes, the validator source and `docs/config.md` agree.

#[path = "fixtures/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use synapsor_core::config::Severity;
use synapsor_core::config::validate::ALL_CODES;

use support::repo_root;

/// String literals of Rust source (escapes honoured; no raw strings or `'"'` chars expected).
fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut lit = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => lit.push(c),
            }
        }
        out.push(lit);
    }
    out
}

/// `"UPPER_SNAKE"` string literals (with at least one underscore) in `text`.
fn code_literals(text: &str) -> BTreeSet<String> {
    string_literals(text)
        .into_iter()
        .filter(|s| {
            s.contains('_')
                && s.starts_with(|c: char| c.is_ascii_uppercase())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

#[test]
fn every_code_in_the_validator_is_listed() {
    let dir = repo_root().join("crates/core/src/config/validate");
    let mut used = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("read the validator directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&path).expect("read");
            let body = src.split("#[cfg(test)]").next().expect("source");
            used.extend(code_literals(body));
        }
    }
    let listed: BTreeSet<String> = ALL_CODES.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert!(
        used.len() >= listed.len(),
        "the literal scan found only {} codes",
        used.len()
    );
    let unlisted: Vec<_> = used.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "codes used but missing from ALL_CODES: {unlisted:?}"
    );
}

#[test]
fn docs_list_every_code_with_its_severity() {
    let docs = std::fs::read_to_string(repo_root().join("docs/config.md")).expect("read docs/config.md");
    let table = docs
        .split("\n## Codes")
        .nth(1)
        .expect("docs/config.md has a ## Codes section");
    let mut documented = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`').to_owned();
        let severity = match cells[2] {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            other => panic!("{code}: severity {other}"),
        };
        assert!(
            documented.insert(code.clone(), severity).is_none(),
            "{code} documented twice"
        );
    }
    let listed: BTreeMap<String, Severity> = ALL_CODES.iter().map(|(c, s)| ((*c).to_owned(), *s)).collect();
    assert_eq!(
        documented, listed,
        "the ## Codes table of docs/config.md and ALL_CODES differ"
    );
}
