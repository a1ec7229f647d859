//! The `tasker` command: everything is in the library (src/lib.rs), which the Python
//! package's `tasker` script runs too.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(tasker_cli::run(std::env::args_os()))
}
