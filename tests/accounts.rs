//! Real estates, against the local emulator: a named profile for the credentials,
//! who the calls are made as (plan, journal, report), and every call saying which
//! evac and which run made it.

mod support;

use support::Account;

const BASE: &str = "tests/fixtures/plan/base.yaml";

#[test]
fn every_call_names_evac_and_the_run_that_made_it() {
    let account = Account::fresh();
    account.seed();
    let state = tempfile::tempdir().expect("state dir");
    let before = account.calls().len();
    let shown = account
        .command("evac")
        .args(["plan", BASE])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!(
            "  as: arn:aws:iam::{0}:user/evac (account {0})",
            account.id
        )),
        "{text}"
    );
    let planned = account.calls().split_off(before);
    assert!(planned.iter().any(|c| c.service == "sts"), "{planned:?}");
    let version = format!("evac/{}", env!("CARGO_PKG_VERSION"));
    for call in &planned {
        assert!(call.user_agent.contains(&version), "{call:?}");
        assert!(
            !call.user_agent.contains("evac-run/"),
            "a plan has no run: {call:?}"
        );
    }

    let before = account.calls().len();
    account
        .command("evac")
        .args(["run", BASE, "--var", "bake=0s", "--yes", "--state-dir"])
        .arg(state.path())
        .assert()
        .success();
    let id = support::run_ids(state.path()).pop().expect("a run");
    // Who the calls were made as: in the journal and the report.
    let arn = format!("arn:aws:iam::{}:user/evac", account.id);
    let started = support::journal_so_far(state.path(), &id)
        .into_iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    assert_eq!(started["caller"]["arn"], arn.as_str());
    assert_eq!(started["caller"]["account"], account.id.as_str());
    let report = account
        .command("evac")
        .args(["report", &id, "--state-dir"])
        .arg(state.path())
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains(&format!("| as | `{arn}` (account {}) |", account.id)),
        "{text}"
    );
    let ran = account.calls().split_off(before);
    assert!(ran.iter().any(|c| c.mutating));
    for call in &ran {
        assert!(
            call.user_agent
                .contains(&format!("{version} evac-run/{id}")),
            "{call:?}"
        );
    }

    let before = account.calls().len();
    account
        .command("evac")
        .args(["rollback", &id, "--yes", "--state-dir"])
        .arg(state.path())
        .assert()
        .success();
    for call in account.calls().split_off(before) {
        assert!(
            call.user_agent.contains(&format!("evac-run/{id}")),
            "{call:?}"
        );
    }
}

#[test]
fn a_profile_given_on_the_command_line_supplies_the_credentials() {
    let account = Account::fresh();
    account.seed();
    let config = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(
        config.path(),
        format!(
            "[profile drill]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            account.access_key, account.secret_key
        ),
    )
    .expect("write config");
    let plan = |profile: &str| {
        account
            .command("evac")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", config.path())
            .env("AWS_PROFILE", "nosuch-from-the-environment")
            .args(["plan", BASE, "--profile", profile])
            .output()
            .expect("evac runs")
    };
    let before = account.calls().len();
    let found = plan("drill");
    assert_eq!(
        found.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    assert!(
        account.calls().len() > before,
        "the plan's reads were signed with the profile's key"
    );

    let missing = plan("nosuch");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no AWS credentials for profile `nosuch` (from --profile)"),
        "{stderr}"
    );
}
