//! The command line from Python: the wheel's `tasker` script and `python -m tasker`
//! run the same Rust code as the `tasker` binary (the `tasker-cli` library compiled
//! into this module), so a wheel needs no second executable.

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the tasker command line on `argv` (the program name first) and returns its
/// exit status. The GIL is released for the whole command (`watch` and `serve` run
/// until interrupted).
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| tasker_cli::run(argv))
}
