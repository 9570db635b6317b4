//! `custos policy check | render | diff` as a user runs them: exit codes,
//! what goes to stdout and stderr, and the committed renderings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn custos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custos")).args(args).current_dir(root()).output().expect("the custos binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A scratch folder per test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("custos-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_accepts_both_bundled_policies_with_a_one_line_summary() {
    for (file, summary) in [
        (
            "policies/bstage.toml",
            "ok: policies/bstage.toml is valid: bstage version 2023-02-21 (notice 2023-02-21, effective 2023-02-28): 18 items, 6 purposes, 5 collection points, 7 roles, 6 record classes, 5 processors, 1 transfers, 3 jurisdictions\n",
        ),
        ("policies/example-eu.toml", ""),
    ] {
        let o = custos(&["policy", "check", file]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 1, "{file}");
        if !summary.is_empty() {
            assert_eq!(stdout(&o), summary);
        }
        assert_eq!(stderr(&o), "");
    }
}

#[test]
fn check_lists_every_problem_with_file_line_and_key_path() {
    let scratch = Scratch::new("check");
    let text = std::fs::read_to_string(root().join("policies/bstage.toml")).unwrap();
    let broken = text.replacen("retain_for = \"3 months\"", "retain_for = \"0 months\"", 1).replacen(
        "withdraw_via = [\"web_page\", \"email\"]",
        "withdraw_via = [\"web_page\", \"pigeon\"]",
        1,
    );
    let file = scratch.file("broken.toml", broken.as_bytes());
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let o = custos(&["policy", "check", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let expected = format!(
        "{file}:{}: purposes[2].consent.withdraw_via[1]: unknown channel \"pigeon\" (declare it under [[channels]])\n\
         {file}:{}: record_classes[5].retain_for: \"0 months\": a span must be longer than zero\n\
         error: {file} is not a valid policy: 2 problems in the policy file\n",
        line_of("\"pigeon\""),
        line_of("\"0 months\""),
    );
    assert_eq!(stderr(&o), expected);
}

#[test]
fn check_refuses_unreadable_and_hostile_files_without_panicking() {
    let scratch = Scratch::new("hostile");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let cases: Vec<(String, &str)> = vec![
        (scratch.file("random.toml", &random), "the file is not UTF-8 text"),
        (scratch.file("huge.toml", &vec![b'#'; 2 * 1024 * 1024]), "policy files are limited to 1048576 bytes"),
        (scratch.file("deep.toml", format!("a = {}", "[".repeat(50_000)).as_bytes()), "nested more than 32 deep"),
        (scratch.file("empty.toml", b""), "missing field `policy`"),
        (root().join("no/such/file.toml").to_str().unwrap().to_owned(), "cannot read"),
    ];
    for (file, message) in cases {
        let o = custos(&["policy", "check", &file]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{file}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{file}: {}", stderr(&o));
    }
}

#[test]
fn render_prints_the_committed_policy_texts() {
    for (format, committed) in [("markdown", "policies/bstage.md"), ("html", "policies/bstage.html")] {
        let o = custos(&["policy", "render", "policies/bstage.toml", "--format", format]);
        assert!(o.status.success(), "{}", stderr(&o));
        let expected = std::fs::read_to_string(root().join(committed)).unwrap();
        assert!(stdout(&o) == expected, "`custos policy render --format {format}` differs from {committed}");
    }
    let scratch = Scratch::new("render");
    let out = scratch.0.join("policy.html");
    let o = custos(&["policy", "render", "policies/example-eu.toml", "--format", "html", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(out).unwrap().starts_with("<!DOCTYPE html>"));
}

#[test]
fn render_writes_the_records_of_processing_as_json() {
    let o = custos(&["policy", "render", "policies/bstage.toml", "--format", "ropa"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ropa: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(ropa["controller"]["name"], "bemyfriends Co., Ltd.");
    let activities = ropa["activities"].as_array().unwrap();
    assert_eq!(activities.len(), 6, "one per purpose");
    let fees = activities.iter().find(|a| a["purpose"] == "service_fees").unwrap();
    let transfer = &fees["transfers"][0];
    assert_eq!(
        transfer["items"],
        serde_json::json!(["email", "name", "mobile_phone", "service_use_info", "purchase_history"])
    );
}

#[test]
fn render_refuses_an_unknown_format() {
    let o = custos(&["policy", "render", "policies/bstage.toml", "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value 'pdf'"), "{}", stderr(&o));
}

#[test]
fn diff_reports_significance_and_the_earliest_date() {
    let scratch = Scratch::new("diff");
    let text = std::fs::read_to_string(root().join("policies/bstage.toml")).unwrap();
    let amended = text
        .replacen("version = \"2023-02-21\"", "version = \"2024-03-01\"", 1)
        .replacen("notice_date = 2023-02-21", "notice_date = 2024-01-30", 1)
        .replacen("effective_date = 2023-02-28", "effective_date = 2024-03-01", 1)
        .replacen(
            "required = [\"name\", \"date_of_birth\", \"country\"]",
            "required = [\"name\", \"date_of_birth\", \"country\", \"mobile_phone\"]",
            1,
        );
    let new = scratch.file("amended.toml", amended.as_bytes());

    // Announced on its notice date, 2024-01-30: 30 days later is 2024-02-29.
    let o = custos(&["policy", "diff", "policies/bstage.toml", &new]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("significant: yes (new_items)"), "{out}");
    assert!(out.contains("notice required: 30 days"), "{out}");
    assert!(out.contains("earliest effective date: 2024-02-29"), "{out}");
    assert!(out.contains("respects the notice period"), "{out}");

    // Announced later, the same amendment comes too early: exit code 3.
    let o = custos(&["policy", "diff", "policies/bstage.toml", &new, "--announced", "2024-02-15"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("is too early: it may take effect on 2024-03-16 at the earliest"), "{}", stdout(&o));

    let o = custos(&["policy", "diff", "policies/bstage.toml", &new, "--announced", "2024-02-30"]);
    assert_eq!(o.status.code(), Some(2), "an impossible date is a usage error");
}
