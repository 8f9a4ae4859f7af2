//! `evac validate`: every rule, located; exit codes; JSON output.

mod support;

use support::evac;

/// Runs `evac validate FILE` and returns (exit code, the diagnostics' headlines).
fn headlines(file: &str, extra: &[&str]) -> (i32, Vec<String>) {
    let output = evac()
        .arg("validate")
        .arg(file)
        .args(extra)
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with(file))
        .map(str::to_owned)
        .collect();
    (output.status.code().unwrap_or(-1), lines)
}

fn assert_invalid(name: &str, expected: &[&str]) {
    let file = format!("tests/fixtures/invalid/{name}.yaml");
    let (code, lines) = headlines(&file, &[]);
    assert_eq!(code, 2, "{file} must be rejected with exit 2");
    let expected: Vec<String> = expected.iter().map(|e| format!("{file}:{e}")).collect();
    assert_eq!(lines, expected, "diagnostics of {file}");
}

#[test]
fn example_playbooks_are_valid() {
    let output = evac()
        .args([
            "validate",
            "playbooks/evacuate-region.yaml",
            "playbooks/evacuate-zone.yaml",
        ])
        .output()
        .expect("evac runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok: playbooks/evacuate-region.yaml (evacuate-region, 4 steps)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: playbooks/evacuate-zone.yaml (evacuate-zone, 2 steps)"),
        "{stdout}"
    );
}

#[test]
fn region_playbook_is_reused_for_failback_with_vars() {
    let (code, lines) = headlines(
        "playbooks/evacuate-region.yaml",
        &["--var", "source=us-west-2", "--var", "target=us-east-1"],
    );
    assert_eq!((code, lines), (0, vec![]));
}

#[test]
fn a_var_the_playbook_does_not_declare_is_rejected() {
    let (code, lines) = headlines(
        "playbooks/evacuate-region.yaml",
        &["--var", "tagret=us-east-1"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        [
            "playbooks/evacuate-region.yaml:16:3: params: --var tagret sets a parameter the playbook does not declare"
        ]
    );
}

#[test]
fn a_var_that_makes_a_bad_region_is_located_where_it_is_used() {
    let (code, lines) = headlines(
        "playbooks/evacuate-zone.yaml",
        &["--var", "zone=us-west-2a"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        [
            "playbooks/evacuate-zone.yaml:33:13: steps[0].evacuate_zone.zone: zone us-west-2a is not in region us-east-1"
        ]
    );
}

#[test]
fn five_mistakes_are_all_reported_in_one_pass() {
    assert_invalid(
        "five-mistakes",
        &[
            "20:14: steps[0].scale_up.group: undefined group `apii`",
            "27:22: steps[1].shift_traffic.ramp[2]: the ramp must increase strictly, but 50 follows 75",
            "28:13: steps[1].shift_traffic.bake: invalid duration `2x`: write a number with a unit, like `90s`, `2m` or `1h30m`",
            "29:9: steps[2].id: duplicate step id `scale-target`",
            "33:7: steps[2].drain.timout: unknown field `timout`, expected one of `group`, `groups`, `region`, `to`, `wait`, `force_protected`, `timeout`, `suspend`",
        ],
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    assert_invalid(
        "yaml-syntax",
        &[
            "19:65: steps[0].shift_traffic.ramp[1]: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 19 column 56",
        ],
    );
}

#[test]
fn unknown_fields_are_errors_with_a_suggestion() {
    assert_invalid(
        "unknown-field",
        &[
            "20:7: steps[0].shift_traffic: missing field `ramp`",
            "22:7: steps[0].shift_traffic.rampp: unknown field `rampp`, expected one of `record`, `records`, `from`, `to`, `ramp`, `bake`, `timeout`",
        ],
    );
    let output = evac()
        .args(["validate", "tests/fixtures/invalid/unknown-field.yaml"])
        .output()
        .expect("evac runs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("= help: did you mean `ramp`?"));
}

#[test]
fn unknown_step_kinds_are_errors() {
    assert_invalid(
        "unknown-step-kind",
        &[
            "19:5: steps[0].shift_dns: unknown field `shift_dns`, expected one of `id`, `description`, `scale_up`, `shift_traffic`, `drain`, `wait`, `approve`, `check`, `evacuate_zone`",
        ],
    );
}

#[test]
fn wrong_types_are_errors() {
    assert_invalid(
        "wrong-type",
        &["22:16: steps[0].scale_up.desired: invalid type: string \"many\", expected u32"],
    );
}

#[test]
fn duplicate_step_ids_are_errors() {
    assert_invalid(
        "duplicate-step-id",
        &["20:9: steps[1].id: duplicate step id `hold`"],
    );
}

#[test]
fn duplicate_keys_point_at_the_second_one() {
    assert_invalid(
        "duplicate-key",
        &["22:7: steps[0].drain.region: duplicate key"],
    );
}

#[test]
fn undefined_groups_are_errors() {
    assert_invalid(
        "undefined-group",
        &["20:20: steps[0].drain.group[1]: undefined group `web`"],
    );
}

#[test]
fn undefined_records_are_errors() {
    assert_invalid(
        "undefined-record",
        &["20:15: steps[0].shift_traffic.record: undefined record `www`"],
    );
}

#[test]
fn undefined_params_are_errors_and_nothing_else_is_said_of_the_value() {
    assert_invalid(
        "undefined-param",
        &["21:15: steps[0].drain.region: undefined parameter `sorce`"],
    );
}

#[test]
fn ramps_must_increase_strictly() {
    assert_invalid(
        "ramp-not-increasing",
        &[
            "22:22: steps[0].shift_traffic.ramp[2]: the ramp must increase strictly, but 50 follows 50",
        ],
    );
}

#[test]
fn ramp_values_must_be_percentages() {
    assert_invalid(
        "ramp-out-of-range",
        &["22:18: steps[0].shift_traffic.ramp[1]: ramp value 150 is out of range"],
    );
}

#[test]
fn malformed_durations_are_errors() {
    assert_invalid(
        "bad-duration",
        &[
            "19:11: steps[0].wait: invalid duration `10 minutes please`: write a number with a unit, like `90s`, `2m` or `1h30m`",
        ],
    );
}

#[test]
fn malformed_region_names_are_errors() {
    assert_invalid(
        "bad-region",
        &[
            "21:15: steps[0].drain.region: invalid region name `us-east1`: expected a name like `us-east-1`",
        ],
    );
}

#[test]
fn percentages_out_of_range_are_errors() {
    assert_invalid(
        "percent-out-of-range",
        &[
            "22:48: steps[0].scale_up.absorb.percent: percentage 150 is out of range: use a whole number from 1 to 100",
        ],
    );
}

#[test]
fn a_record_needs_a_set_identifier_for_the_region_a_step_uses() {
    assert_invalid(
        "missing-set-identifier",
        &[
            "21:11: steps[0].shift_traffic.to: record `api` has no set identifier for region eu-west-1",
        ],
    );
}

#[test]
fn zones_must_belong_to_the_step_region() {
    assert_invalid(
        "zone-not-in-region",
        &["22:13: steps[0].evacuate_zone.zone: zone us-west-2a is not in region us-east-1"],
    );
}

#[test]
fn a_zone_step_shifts_only_load_balancers_of_its_region_by_arn() {
    assert_invalid(
        "zone-load-balancers",
        &[
            "13:11: steps[0].evacuate_zone.load_balancers[0]: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123456789abcdef is not the ARN of an Application or Network Load Balancer",
            "14:11: steps[0].evacuate_zone.load_balancers[1]: load balancer arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/api/0123456789abcdef is in us-west-2, not in the step's region us-east-1",
        ],
    );
}

#[test]
fn human_output_shows_the_source_line_and_a_caret() {
    let output = evac()
        .args(["validate", "tests/fixtures/invalid/five-mistakes.yaml"])
        .output()
        .expect("evac runs");
    insta::assert_snapshot!(
        "five_mistakes_human",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn json_output_lists_every_diagnostic() {
    let output = evac()
        .args([
            "validate",
            "--output",
            "json",
            "playbooks/evacuate-region.yaml",
            "tests/fixtures/invalid/five-mistakes.yaml",
        ])
        .output()
        .expect("evac runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stderr.is_empty(), "JSON mode keeps stderr quiet");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(report["valid"], false);
    assert_eq!(report["playbooks"][0]["valid"], true);
    assert_eq!(
        report["playbooks"][1]["diagnostics"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    insta::assert_json_snapshot!("five_mistakes_json", report);
}

#[test]
fn a_missing_file_is_invalid_input() {
    let (code, lines) = headlines("tests/fixtures/does-not-exist.yaml", &[]);
    assert_eq!(code, 2);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("tests/fixtures/does-not-exist.yaml: <root>: cannot read playbook"),
        "{lines:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = evac().args(["validate"]).output().expect("evac runs");
    assert_eq!(output.status.code(), Some(2));
    let output = evac()
        .args([
            "validate",
            "--var",
            "novalue",
            "playbooks/evacuate-region.yaml",
        ])
        .output()
        .expect("evac runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("write it as NAME=VALUE"));
}

#[test]
fn guardrail_ramp_steps_larger_than_max_increment_are_errors() {
    assert_invalid(
        "ramp-too-steep",
        &[
            "16:18: steps[0].shift_traffic.ramp[1]: the step from 25 to 100 moves 75 percent of the weight at once, more than max_increment 50",
        ],
    );
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let state = tempfile::tempdir().expect("state dir");
    let mut child = std::process::Command::new(support::evac().get_program())
        .args(["status", "--output", "json", "--state-dir"])
        .arg(state.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("evac starts");
    // The reader goes away before evac writes, as `| head` does.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("evac exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
    assert!(
        output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        output.status
    );
}

/// The display column (terminal cells) where `needle` starts on the excerpt line
/// showing it, and where the caret line's `^` starts.
fn caret_and_token(stderr: &str, needle: &str) -> (usize, usize) {
    use unicode_width::UnicodeWidthStr;
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(" | ") && l.contains(needle))
        .unwrap_or_else(|| panic!("no excerpt line with {needle}:\n{stderr}"));
    let source = lines[at];
    let caret = lines[at + 1];
    let token = source.find(needle).expect("needle");
    let mark = caret
        .find('^')
        .unwrap_or_else(|| panic!("no caret:\n{stderr}"));
    (source[..token].width(), caret[..mark].width())
}

#[test]
fn the_caret_points_at_the_place_after_a_tab_and_after_wide_characters() {
    for fixture in ["tab", "wide-characters"] {
        let file = format!("tests/fixtures/invalid/{fixture}.yaml");
        let output = evac()
            .args(["validate", &file])
            .output()
            .expect("evac runs");
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (token, caret) = caret_and_token(&stderr, "2x");
        assert_eq!(
            caret, token,
            "{fixture}: the caret is under `2x`:\n{stderr}"
        );
    }
}

#[test]
fn a_duplicate_points_at_the_first_place_too() {
    let output = evac()
        .args(["validate", "tests/fixtures/invalid/duplicate-key.yaml"])
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("21 |"))
        .unwrap_or_else(|| panic!("the first place is shown:\n{stderr}"));
    assert!(
        lines[first + 1]
            .trim_end()
            .ends_with("------ first set here"),
        "{stderr}"
    );
    assert!(lines[first + 2].starts_with("22 |"), "{stderr}");
    assert!(lines[first + 3].trim_end().ends_with("^^^^^^"), "{stderr}");
}

#[test]
fn accounts_must_say_how_they_are_reached_and_be_defined_where_used() {
    assert_invalid(
        "accounts",
        &[
            "8:15: accounts.dns.role_arn: `arn:aws:iam::12345:role/evac-dns` is not an IAM role ARN",
            "10:5: accounts.shared: account `shared` says neither how to reach it nor as whom",
            "10:18: accounts.shared.external_id: `external_id` is for assuming a role, and account `shared` has no `role_arn`",
            "13:15: accounts.long.duration: a role session of 13h is outside what AWS grants",
            "17:14: groups.api.account: undefined account `dsn`",
            "26:62: stop_when[0].alarm.account: undefined account `networking`",
        ],
    );
}

#[test]
fn a_shift_says_where_traffic_goes_or_leaves_and_a_split_adds_up_to_100() {
    assert_invalid(
        "shift-forms",
        &[
            "12:22: steps[0].shift_traffic: the shift says neither where traffic goes nor where it leaves",
            "14:41: steps[1].shift_traffic.to: a split `to:` shares out what leaves a region, and the shift has no `from`",
            "16:58: steps[2].shift_traffic.to: the split adds up to 90 percent",
            "16:84: steps[2].shift_traffic.to.eu-west-1: record `api` has no set identifier for region eu-west-1",
        ],
    );
}

#[test]
fn a_metric_check_has_one_threshold_a_known_statistic_and_period_and_no_state() {
    assert_invalid(
        "metric-check",
        &[
            "8:14: steps[0].check.state: a metric has no state",
            "11:7: steps[1].check: a metric check needs exactly one of `above` and `below`",
            "11:93: steps[1].check.metric.stat: unknown statistic `Total` of metric RequestCount",
            "11:108: steps[1].check.metric.period: period 1m30s of metric RequestCount is not one CloudWatch keeps",
            "16:7: steps[2].check: a check watches one thing, and this one sets `alarm` and `metric`",
        ],
    );
}

#[test]
fn notifications_need_a_topic_arn_and_one_webhook_url() {
    assert_invalid(
        "notify",
        &[
            "5:8: notify.sns: `arn:aws:sqs:us-east-1:123456789012:drills` is not an SNS topic ARN",
            "6:14: notify.webhook: a webhook is exactly one of `url` and `url_env`",
        ],
    );
}

#[test]
fn a_var_file_sets_parameters_and_each_var_wins_over_it() {
    let dir = tempfile::tempdir().expect("dir");
    let vars = dir.path().join("failback.yaml");
    std::fs::write(&vars, "source: us-west-2\ntarget: us-east-9x\n").expect("written");
    let vars = vars.display().to_string();
    // The file's target is not a region: the playbook says so where it is used.
    let output = evac()
        .args([
            "validate",
            "playbooks/evacuate-region.yaml",
            "--var-file",
            &vars,
        ])
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("us-east-9x"), "{stderr}");
    // --var wins over the file.
    let (code, lines) = headlines(
        "playbooks/evacuate-region.yaml",
        &["--var-file", &vars, "--var", "target=us-east-1"],
    );
    assert_eq!((code, lines), (0, vec![]));
    // A value that is not a scalar is refused, naming the file and the name.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "source: [us-west-2]\n").expect("written");
    let output = evac()
        .args(["validate", "playbooks/evacuate-region.yaml", "--var-file"])
        .arg(&bad)
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--var-file {}: `source` is not a string, a number or true/false",
            bad.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_region_aws_does_not_have_is_named_unknown_and_nothing_else_is_blamed() {
    let file = "playbooks/evacuate-region.yaml";
    let (code, lines) = headlines(file, &["--var", "target=us-west-3"]);
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        [format!(
            "{file}:17:11: params.target: unknown region `us-west-3`: AWS has no region by that name (did you mean `us-west-2`?); if AWS has opened it since this evac was built, set EVAC_EXTRA_REGIONS=us-west-3 (parameter `target`, set by target=us-west-3 on the command line, used at stop_when[0].alarm.region)"
        )],
        "once, at the params line, and no second, wrong error about the stop condition"
    );
    // A typo in the file's params: said once, at its line, with the likely region.
    let dir = tempfile::tempdir().expect("dir");
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        std::fs::read_to_string(file)
            .expect("example")
            .replace("  target: us-west-2", "  target: us-wset-2"),
    )
    .expect("written");
    let typo = typo.display().to_string();
    let (code, lines) = headlines(&typo, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        lines,
        [format!(
            "{typo}:17:11: params.target: unknown region `us-wset-2`: AWS has no region by that name (did you mean `us-west-2`?); if AWS has opened it since this evac was built, set EVAC_EXTRA_REGIONS=us-wset-2 (parameter `target`, used at stop_when[0].alarm.region)"
        )]
    );
    // A region opened since is accepted when named.
    let output = evac()
        .env("EVAC_EXTRA_REGIONS", "us-west-3")
        .args(["validate", file, "--var", "target=us-west-3"])
        .output()
        .expect("evac runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("unknown region"), "{stderr}");
}
