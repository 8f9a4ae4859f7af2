//! `evac-seed`: creates the demo world in a local AWS emulator and prints it as JSON.
//!
//! Usage: `evac-seed [--endpoint-url URL] [--fleet N --records N [--zones N]]`
//! (endpoint default: `AWS_ENDPOINT_URL`). It refuses
//! any endpoint that is not on loopback, so it can never touch a real account.

use std::process::ExitCode;

use clap::Parser;

use evac::aws::AwsContext;
use evac::seed::{WorldSpec, seed};

/// Create the two-region demo world in a local AWS emulator.
#[derive(Debug, Parser)]
#[command(name = "evac-seed", version, about)]
struct Args {
    /// The emulator's endpoint (must be on loopback).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: String,
    /// Instead of the demo world, a fleet: this many groups in each of two regions.
    #[arg(long, value_name = "N", requires = "records")]
    fleet: Option<usize>,
    /// With --fleet: this many weighted records...
    #[arg(long, value_name = "N", requires = "fleet")]
    records: Option<usize>,
    /// ...spread over this many hosted zones.
    #[arg(long, value_name = "N", default_value_t = 5)]
    zones: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    // `evac-seed | head` ends quietly when the reader goes away.
    evac::cli::quiet_on_closed_pipe();
    let args = Args::parse();
    let ctx = AwsContext::load(Some(&args.endpoint_url)).await;
    let spec = match (args.fleet, args.records) {
        (Some(services), Some(records)) => WorldSpec::fleet(services, records, args.zones),
        _ => WorldSpec::standard(),
    };
    match seed(&ctx, &spec).await {
        Ok(world) => match serde_json::to_string_pretty(&world) {
            Ok(json) => {
                evac::out!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                evac::say_error!("failed to encode the world as JSON: {err}");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            evac::say_error!("{err}");
            ExitCode::FAILURE
        }
    }
}
