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
        .evac_in(state.path(), &["run", BASE, "--var", "bake=0s", "--yes"])
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
        .evac_in(state.path(), &["report", &id])
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
        .evac_in(state.path(), &["rollback", &id, "--yes"])
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

#[test]
fn records_in_a_role_account_are_changed_with_the_role_and_groups_with_the_ambient_credentials() {
    // The services' account (ambient credentials) and a networking account holding
    // the DNS, reached by assuming a role; each seeded with the demo world, so a call
    // made with the wrong credentials would change the wrong copy.
    let services = Account::fresh();
    let dns = Account::fresh();
    services.seed();
    dns.seed();
    let dns_before = dns.world();
    let weights_before = dns_before.weights.clone();
    assert_eq!(services.world().weights, weights_before);
    let playbook = "tests/fixtures/accounts/dns-role.yaml";
    let var = format!("dns_account={}", dns.id);
    let all_before = support::recorded_calls().len();

    let shown = services
        .command("evac")
        .args(["plan", playbook, "--var", &var])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    let role = format!("arn:aws:iam::{}:role/evac-dns", dns.id);
    for identity in [
        format!(
            "  as: arn:aws:iam::{0}:user/evac (account {0})",
            services.id
        ),
        format!(
            "  as dns: arn:aws:sts::{0}:assumed-role/evac-dns/evac-plan (account {0}), role {role}",
            dns.id
        ),
    ] {
        assert!(text.contains(&identity), "{identity}\n{text}");
    }

    let state = tempfile::tempdir().expect("state dir");
    services
        .evac_in(state.path(), &["run", playbook, "--var", &var, "--yes"])
        .assert()
        .success();
    let id = support::run_ids(state.path()).pop().expect("a run");
    // What evac called, before the test's own reads below.
    let calls = support::recorded_calls().split_off(all_before);

    // Route 53 changed in the DNS account only; Auto Scaling in the services' only.
    let dns_world = dns.world();
    let services_world = services.world();
    assert_eq!(dns_world.weights["api-usw2"], 100);
    assert_eq!(dns_world.weights["api-use1"], 0);
    assert_eq!(services_world.weights, weights_before);
    assert_eq!(dns_world.groups, dns_before.groups);
    assert_ne!(services_world.groups, dns_before.groups);

    // The recording: the ambient key made no Route 53 call and assumed the role with
    // the external id and a session named after the run; every Route 53 call was
    // signed with the role's temporary key.
    let ambient: Vec<_> = calls
        .iter()
        .filter(|c| c.access_key == services.access_key)
        .collect();
    assert!(
        ambient.iter().all(|c| c.service != "route53"),
        "{ambient:?}"
    );
    assert!(
        ambient
            .iter()
            .any(|c| c.service == "autoscaling" && c.mutating)
    );
    let assumed: Vec<_> = ambient
        .iter()
        .filter(|c| c.operation == "AssumeRole")
        .collect();
    let session = format!("RoleSessionName=evac-{id}");
    assert!(
        assumed.iter().any(|c| c.body.contains(&session)
            && c.body.contains("ExternalId=drill-2026")
            && c.body.contains(&format!("{}%3Arole%2Fevac-dns", dns.id))),
        "{assumed:?}"
    );
    let route53: Vec<_> = calls
        .iter()
        .filter(|c| c.service == "route53" && c.user_agent.contains(&format!("evac-run/{id}")))
        .collect();
    assert!(route53.iter().any(|c| c.mutating), "{route53:?}");
    for call in &route53 {
        assert!(call.access_key.starts_with("ASIA"), "{call:?}");
        assert_ne!(call.access_key, dns.access_key);
    }

    // The report says who each account's calls were made as.
    let report = services
        .evac_in(state.path(), &["report", &id])
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&report.stdout);
    let row = format!(
        "| as dns | `arn:aws:sts::{0}:assumed-role/evac-dns/evac-{id}` (account {0}) |",
        dns.id
    );
    assert!(text.contains(&row), "{row}\n{text}");

    // Rollback, by run id alone, finds the role in the journal's plan.
    services
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .assert()
        .success();
    assert_eq!(dns.world().weights, weights_before);
}

#[test]
fn a_region_left_for_two_others_ends_at_their_proportions_and_rolls_back() {
    let account = Account::fresh();
    let mut spec = evac::seed::WorldSpec::standard();
    let mut europe = spec.regions[1].clone();
    europe.region = evac::playbook::Region::parse("eu-west-1").expect("region");
    europe.octet = 2;
    spec.regions.push(europe);
    account.seed_spec(&spec);
    account.set_weights(&[("api-use1", 50), ("api-usw2", 25), ("api-euw1", 25)]);
    let api =
        |world: &support::World| ["api-use1", "api-usw2", "api-euw1"].map(|id| world.weights[id]);
    assert_eq!(api(&account.world()), [50, 25, 25]);

    let playbook = "tests/fixtures/accounts/three-regions.yaml";
    let shown = account
        .command("evac")
        .args(["plan", playbook])
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{text}");
    assert!(
        text.contains("shift api away from us-east-1 to the other regions in proportion to their weights in 2 increments (50% -> 100% of its weight)"),
        "{text}"
    );
    let state = tempfile::tempdir().expect("state dir");
    account
        .evac_in(state.path(), &["run", playbook, "--yes"])
        .assert()
        .success();
    let after = account.world();
    assert_eq!(api(&after), [0, 50, 50]);
    // Both other regions absorbed half of us-east-1's desired 6.
    assert_eq!(after.groups["api-us-west-2"].1, 2 + 3);
    assert_eq!(after.groups["api-eu-west-1"].1, 2 + 3);

    let id = support::run_ids(state.path()).pop().expect("a run");
    account
        .evac_in(state.path(), &["rollback", &id, "--yes"])
        .assert()
        .success();
    let restored = account.world();
    assert_eq!(api(&restored), [50, 25, 25]);
    assert_eq!(restored.groups["api-eu-west-1"].1, 2);
}

#[test]
fn state_in_a_bucket_of_another_account_is_reached_through_the_state_role() {
    let services = Account::fresh();
    let shared = Account::fresh();
    services.seed();
    let bucket = shared.bucket(&format!("drill-state-{}", shared.id));
    let url = format!("s3://{}/drills", bucket.name);
    let role = format!("arn:aws:iam::{}:role/evac-state", shared.id);
    let work = tempfile::tempdir().expect("work dir");
    let all_before = support::recorded_calls().len();
    services
        .command("evac")
        .current_dir(work.path())
        .args([
            "run",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/",
                "tests/fixtures/plan/base.yaml"
            ),
        ])
        .args([
            "--var",
            "bake=0s",
            "--yes",
            "--state-dir",
            &url,
            "--state-role",
            &role,
        ])
        .assert()
        .success();
    let ids = bucket.run_ids("drills");
    assert_eq!(ids.len(), 1, "the run's journal is in the shared bucket");
    services
        .command("evac")
        .current_dir(work.path())
        .args(["rollback", &ids[0], "--yes", "--state-dir", &url])
        .env("EVAC_STATE_ROLE", &role)
        .assert()
        .success();
    let calls = support::recorded_calls().split_off(all_before);
    let s3: Vec<_> = calls
        .iter()
        .filter(|c| c.service == "s3" && c.user_agent.contains("evac/"))
        .collect();
    assert!(s3.iter().any(|c| c.mutating), "{s3:?}");
    for call in &s3 {
        assert!(call.access_key.starts_with("ASIA"), "{call:?}");
    }
    assert!(
        calls.iter().any(|c| c.operation == "AssumeRole"
            && c.access_key == services.access_key
            && c.body.contains("RoleSessionName=evac-state")
            && c.body
                .contains(&format!("{}%3Arole%2Fevac-state", shared.id))),
        "{calls:?}"
    );
    assert!(!work.path().join(".evac").exists(), "nothing kept locally");
}
