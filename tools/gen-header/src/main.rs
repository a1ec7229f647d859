//! Writes `include/tasker.h` from the C ABI in `core/src/ffi/`.
//!
//! `cargo run -p gen-header` rewrites the header; `cargo run -p gen-header -- --check`
//! exits 1 when the committed header differs from what the sources say (CI).
//! This is a separate tool, not a build script of the core, so that building the
//! core (from a vendored R tarball, a wheel, a published crate) never writes
//! outside its own directory or compiles cbindgen.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("gen-header: unknown argument {other:?} (usage: gen-header [--check])");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let core = root.join("core");
    let header = root.join("include/tasker.h");
    let mut config = match cbindgen::Config::from_file(core.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gen-header: core/cbindgen.toml: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.after_includes = Some(version_defines());
    let bindings = match cbindgen::Builder::new()
        .with_crate(&core)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("gen-header: cannot generate the header: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let current = std::fs::read(&header).unwrap_or_default();
    if current == fresh {
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!("include/tasker.h is stale: run `cargo run -p gen-header` and commit the header");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(&header, &fresh) {
        eprintln!("gen-header: cannot write {}: {e}", header.display());
        return ExitCode::FAILURE;
    }
    println!("wrote include/tasker.h");
    ExitCode::SUCCESS
}

/// The library version as C defines. This tool is versioned with the workspace, so its
/// own package version is the one written in the workspace `Cargo.toml`; the core's
/// tests check the header against the core's version.
fn version_defines() -> String {
    format!(
        "\n// The library version (the workspace version in Cargo.toml; also tasker_version()).\n\
         #define TASKER_VERSION_MAJOR {}\n\
         #define TASKER_VERSION_MINOR {}\n\
         #define TASKER_VERSION_PATCH {}\n\
         #define TASKER_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}
