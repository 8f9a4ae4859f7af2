//! `check` on CloudWatch metrics: that traffic actually arrived, not only that DNS
//! changed. Metric data is written to the emulator; the checks pass and fail on it.

mod support;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use support::Account;

const DRILL: &str = "tests/fixtures/checks/traffic-arrived.yaml";

/// Writes `value` requests for the load balancer `lb` of `region`, now.
fn requests(account: &Account, region: &str, lb: &str, value: f64) {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            account
                .context()
                .await
                .cloudwatch(&evac::playbook::Region::parse(region).expect("region"))
                .put_metric_data()
                .namespace("Drill/ALB")
                .metric_data(
                    MetricDatum::builder()
                        .metric_name("RequestCount")
                        .dimensions(Dimension::builder().name("LoadBalancer").value(lb).build())
                        .value(value)
                        .timestamp(std::time::SystemTime::now().into())
                        .build(),
                )
                .send()
                .await
                .expect("put metric data");
        });
}

fn run(account: &Account, vars: &[&str]) -> (i32, String) {
    let state = tempfile::tempdir().expect("state dir");
    let mut args = vec!["run", DRILL, "--yes"];
    for var in vars {
        args.extend(["--var", var]);
    }
    let out = account
        .evac_in(state.path(), &args)
        .output()
        .expect("evac runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn checks_pass_when_the_requests_and_their_share_are_above_the_thresholds() {
    let account = Account::fresh();
    requests(&account, "us-west-2", "app/api-west/1", 950.0);
    requests(&account, "us-east-1", "app/api-east/1", 50.0);
    let (code, stderr) = run(&account, &[]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_metric_below_its_threshold_fails_the_check_with_the_value_seen() {
    let account = Account::fresh();
    requests(&account, "us-west-2", "app/api-west/1", 950.0);
    requests(&account, "us-east-1", "app/api-east/1", 50.0);
    let (code, stderr) = run(&account, &["floor=1000"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("step requests failed: timed out after 2s: waiting until Drill/ALB RequestCount [LoadBalancer=app/api-west/1] Sum per 60s (us-west-2) is above 1000 for 0s; last seen 950"),
        "{stderr}"
    );
}

#[test]
fn a_share_below_its_threshold_fails_the_check_with_the_share_seen() {
    let account = Account::fresh();
    requests(&account, "us-west-2", "app/api-west/1", 600.0);
    requests(&account, "us-east-1", "app/api-east/1", 400.0);
    let (code, stderr) = run(&account, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("step share failed: timed out after 2s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is above 90% for 0s; last seen 60.0%"),
        "{stderr}"
    );
}
