//! The `jwtd` binary: read arguments and environment, start logging, run the command,
//! and turn failures into a message and an exit code.

use std::process::ExitCode;

use clap::Parser;
use jwtd::cli::{self, Cli};

/// jemalloc: per-thread caches, no global lock, and allocations of 8 MiB and more (a password
/// hash's 19 MiB of argon2 memory) in an arena that gives pages back to the system at once.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = Cli::parse();
    let env = std::env::vars().collect();
    let settings = match cli::settings(&args, env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jwtd: invalid settings: {e:#}");
            return ExitCode::from(2);
        }
    };
    let _log = jwtd::telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jwtd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwtd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
