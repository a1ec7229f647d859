//! The `tasker` command: everything is in the library (src/lib.rs), which the Python
//! package's `tasker` script runs too.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A reader that goes away (`tasker history | head -1`) ends the command
    // quietly, as it ends other Unix tools: Rust ignores SIGPIPE by default, and
    // then every print after the pipe closed would panic.
    // SAFETY: at the start of main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    ExitCode::from(tasker_cli::run(std::env::args_os()))
}
