//! Native side of the R package `tasker` (skeleton; see issue 6).
use extendr_api::prelude::*;

/// @keywords internal
#[extendr]
fn tasker_native_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

extendr_module! {
    mod tasker;
    fn tasker_native_version;
}
