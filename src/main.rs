use std::process::ExitCode;

fn main() -> ExitCode {
    evac::cli::main().into()
}
