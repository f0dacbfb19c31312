//! The `jwtd` binary: read arguments and environment, start logging, run the command,
//! and turn failures into a message and an exit code.

use std::ffi::c_char;
use std::process::ExitCode;

use clap::Parser;
use jwtd::cli::{self, Cli};

/// jemalloc: per-thread caches, no global lock, and allocations of 8 MiB and more (a password
/// hash's 19 MiB of argon2 memory) in an arena that gives pages back to the system at once.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (after the build's `background_thread:true`, before
/// `_RJEM_MALLOC_CONF`): freed pages go back to the system within about a second rather than ten,
/// so the memory of a wave of connections is returned before the next wave instead of adding to it.
const JEMALLOC_CONF: &[u8] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";
static JEMALLOC_CONF_C: [c_char; JEMALLOC_CONF.len()] = {
    let mut out = [0; JEMALLOC_CONF.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = JEMALLOC_CONF[i] as c_char;
        i += 1;
    }
    out
};
#[export_name = "_rjem_malloc_conf"]
#[allow(non_upper_case_globals)]
pub static malloc_conf: Option<&c_char> = Some(&JEMALLOC_CONF_C[0]);

fn main() -> ExitCode {
    let args = Cli::parse();
    let env = std::env::vars().collect();
    let mut warnings = Vec::new();
    let loaded = match cli::settings(&args, env, &mut warnings) {
        Ok(loaded) => loaded,
        Err(e) => {
            for warning in &warnings {
                eprintln!("jwtd: warning: {warning}");
            }
            eprintln!("jwtd: invalid settings: {e:#}");
            return ExitCode::from(2);
        }
    };
    let _log = jwtd::telemetry::init(loaded.settings.log_format);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jwtd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwtd: {e:#}");
            // A refused argument, USER_ID_TYPE over a database of the other type, or a database
            // migrated by a newer jwtd: as invalid settings.
            let usage = e.downcast_ref::<cli::BadArgument>().is_some()
                || matches!(
                    e.downcast_ref::<jwtd::app::StartError>(),
                    Some(jwtd::app::StartError::UserIdType { .. } | jwtd::app::StartError::Delivery(_))
                )
                || e.chain().any(|cause| cause.is::<jwtd::store::SchemaTooNew>());
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
