//! The native module `tasker._tasker` (skeleton; see issue 3).
use pyo3::prelude::*;

#[pymodule]
fn _tasker(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
