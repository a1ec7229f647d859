//! `tasker`: the command line (skeleton; see issue 5).
fn main() {
    println!("tasker {}", env!("CARGO_PKG_VERSION"));
}
