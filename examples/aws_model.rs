//! The test suite's proxy as a model of how AWS behaves in time, for benchmark
//! scripts: `aws_model UPSTREAM_URL [TIMING [HELD_REGION]]` prints its own URL and
//! serves until killed. TIMING is `latency=40ms,route53=5,autoscaling=20,sync=2s,
//! launch=3s` (any subset). With HELD_REGION every request signed for that region
//! is held unanswered: a region that is down. `GET /__proxy/stats` returns the calls, injected faults and throttling
//! answers per operation as JSON; `POST /__proxy/reset` zeroes them. With
//! `AWS_MODEL_LOG=FILE`, every call's arrival time and operation is appended to FILE.

#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(upstream) = args.next() else {
        eprintln!("usage: aws_model UPSTREAM_URL [TIMING [HELD_REGION]]");
        std::process::exit(2);
    };
    let timing = match proxy::Timing::parse(&args.next().unwrap_or_default()) {
        Ok(timing) => timing,
        Err(err) => {
            eprintln!("aws_model: {err}");
            std::process::exit(2);
        }
    };
    let rules = match args.next() {
        Some(region) => vec![proxy::Rule::region(&region, proxy::Fault::Hold)],
        None => Vec::new(),
    };
    let running = proxy::FaultProxy::with_timing(&upstream, rules, Some(timing));
    println!("{}", running.url);
    loop {
        std::thread::park();
    }
}
