//! The test suite's fake ARC zonal shift service, for benchmark scripts:
//! `arc_fake [DELAY]` prints its URL and serves until killed. Every load balancer
//! ARN is a managed resource; a shift takes effect DELAY (`30s`, `500ms`; default 0)
//! after it starts. Point evac at it with `AWS_ENDPOINT_URL_ARC_ZONAL_SHIFT`.

#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

#[allow(dead_code)]
#[path = "../tests/support/arc.rs"]
mod arc;

fn main() {
    let delay = match std::env::args().nth(1) {
        None => std::time::Duration::ZERO,
        Some(text) => match evac::playbook::HumanDuration::parse(&text) {
            Ok(d) => d.0,
            Err(err) => {
                eprintln!("arc_fake: {err}");
                std::process::exit(2);
            }
        },
    };
    let fake = arc::FakeArc::start(delay);
    fake.any_load_balancer();
    println!("{}", fake.url);
    loop {
        std::thread::park();
    }
}
