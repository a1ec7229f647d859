//! Regenerates include/tasker.h from the C ABI in src/ffi/ on every build that touches it.
//! cbindgen writes the file only when its content changes, so a clean tree stays clean.

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("core/cbindgen.toml is readable");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/tasker.h")
        .write_to_file(format!("{crate_dir}/../include/tasker.h"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
}
