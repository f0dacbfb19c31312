//! The `jwtd` binary: jemalloc as the allocator, then the command line ([`jwtd::command_line`]:
//! arguments, environment, logging, the command, its exit code).

use std::ffi::c_char;
use std::process::ExitCode;

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
    jwtd::command_line()
}
