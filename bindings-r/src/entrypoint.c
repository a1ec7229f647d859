/* Registers the native routines of the Rust library (extendr functions plus the
   plain .Call progress routines); see src/rust/src/lib.rs. */
void R_init_tasker_rs(void *dll);
void R_init_tasker(void *dll) { R_init_tasker_rs(dll); }
