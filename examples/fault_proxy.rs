//! The test suite's fault-injecting proxy as a program, for benchmark scripts:
//! `fault_proxy UPSTREAM_URL PERCENT` throttles PERCENT% of every operation's calls,
//! prints its own URL, and serves until killed. `GET /__proxy/stats` returns the
//! calls and injected faults per operation as JSON.

#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), Some(percent)) = (args.next(), args.next().and_then(|p| p.parse().ok()))
    else {
        eprintln!("usage: fault_proxy UPSTREAM_URL PERCENT");
        std::process::exit(2);
    };
    let rules = vec![proxy::Rule::rate("*", proxy::Fault::Throttle, percent)];
    let running = proxy::FaultProxy::start(&upstream, rules);
    println!("{}", running.url);
    loop {
        std::thread::park();
    }
}
