//! The fixture corpus: the validator reports exactly the expected codes at the expected paths,
//! and the JSON Schema agrees wherever it can express the rule.
//!
//! `fixtures/invalid/*.json` must fail validation; `fixtures/valid/*.json` must pass, with
//! exactly the listed warnings. Each `.expect` says whether the schema rejects the document
//! (`schema: rejects`) or cannot express the rule (`schema: accepts`); both are asserted, so a
//! schema change that closes or opens a gap shows up here.

#[path = "fixtures/support.rs"]
mod support;

use std::collections::BTreeSet;

use synapsor_core::config::validate::{ALL_CODES, ValidationReport};
use synapsor_core::config::{Severity, parse_config, validate_value};

use support::{Fixture, load_fixtures, schema_errors, schema_validator};

fn issue_set(report: &ValidationReport, severity: Severity) -> BTreeSet<(String, String)> {
    let list = match severity {
        Severity::Error => &report.errors,
        Severity::Warning => &report.warnings,
    };
    list.iter().map(|i| (i.code.to_owned(), i.path.clone())).collect()
}

/// Checks that hold for every report: known codes, right severity, no secret echoed.
fn check_report(f: &Fixture, report: &ValidationReport, failures: &mut Vec<String>) {
    for issue in report.errors.iter().chain(&report.warnings) {
        match ALL_CODES.iter().find(|(c, _)| *c == issue.code) {
            None => failures.push(format!("{}: code {} is not in ALL_CODES", f.name, issue.code)),
            Some((_, sev)) if *sev != issue.severity => {
                failures.push(format!("{}: {} reported as {:?}", f.name, issue.code, issue.severity))
            }
            Some(_) => {}
        }
        if issue.message.contains("hunter2") || issue.path.contains("hunter2") {
            failures.push(format!("{}: {} echoes a secret: {issue}", f.name, issue.code));
        }
        if issue.message.is_empty() || issue.message.contains('\n') {
            failures.push(format!("{}: {} message must be one line", f.name, issue.code));
        }
    }
}

fn check_schema(f: &Fixture, schema: &jsonschema::Validator, failures: &mut Vec<String>) {
    let errors = schema_errors(schema, &f.doc);
    if f.schema_rejects && errors.is_empty() {
        failures.push(format!("{}: expected the schema to reject it, but it accepts", f.name));
    }
    if !f.schema_rejects && !errors.is_empty() {
        failures.push(format!(
            "{}: expected the schema to accept it (rule not expressible), but it rejects: {}",
            f.name,
            errors.join("; ")
        ));
    }
}

#[test]
fn invalid_fixtures_report_exactly_the_expected_errors() {
    let fixtures = load_fixtures("invalid");
    assert!(fixtures.len() >= 100, "the invalid corpus shrank to {}", fixtures.len());
    let schema = schema_validator();
    let mut failures = Vec::new();
    for f in &fixtures {
        let report = validate_value(&f.doc);
        check_report(f, &report, &mut failures);
        check_schema(f, &schema, &mut failures);
        if report.errors.is_empty() {
            failures.push(format!("{}: expected errors, got none", f.name));
            continue;
        }
        let expected: BTreeSet<_> = f.expected.iter().cloned().collect();
        let mut got = issue_set(&report, Severity::Error);
        got.extend(
            issue_set(&report, Severity::Warning)
                .into_iter()
                .filter(|i| expected.contains(i)),
        );
        if got != expected {
            let missing: Vec<_> = expected.difference(&got).collect();
            let extra: Vec<_> = got.difference(&expected).collect();
            failures.push(format!("{}: missing {missing:?}, unexpected {extra:?}", f.name));
        }
        if parse_config(&f.text).is_ok() {
            failures.push(format!("{}: parse_config accepted it", f.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_fixtures_pass_with_exactly_the_expected_warnings() {
    let fixtures = load_fixtures("valid");
    let schema = schema_validator();
    let mut failures = Vec::new();
    for f in &fixtures {
        let report = validate_value(&f.doc);
        check_report(f, &report, &mut failures);
        check_schema(f, &schema, &mut failures);
        if !report.errors.is_empty() {
            failures.push(format!("{}: unexpected errors {:?}", f.name, report.errors));
            continue;
        }
        let expected: BTreeSet<_> = f.expected.iter().cloned().collect();
        let got = issue_set(&report, Severity::Warning);
        if got != expected {
            failures.push(format!("{}: warnings {got:?}, expected {expected:?}", f.name));
        }
        match parse_config(&f.text) {
            Ok((_, warnings)) if warnings == report.warnings => {}
            Ok(_) => failures.push(format!("{}: parse_config returned other warnings", f.name)),
            Err(e) => failures.push(format!("{}: parse_config failed: {:?}", f.name, e.errors)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every code the validator can report is exercised by at least one fixture.
#[test]
fn the_corpus_covers_every_code() {
    let mut covered = BTreeSet::new();
    for kind in ["invalid", "valid"] {
        for f in load_fixtures(kind) {
            covered.extend(f.expected.into_iter().map(|(code, _)| code));
        }
    }
    // Reported by parse_config only, for text that is not JSON or a validator bug.
    let not_document_codes = ["INVALID_JSON", "INVALID_CONFIG_SHAPE"];
    let missing: Vec<_> = ALL_CODES
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !not_document_codes.contains(c) && !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

#[test]
fn validation_is_deterministic() {
    for f in load_fixtures("invalid") {
        assert_eq!(validate_value(&f.doc), validate_value(&f.doc), "{}", f.name);
    }
}
