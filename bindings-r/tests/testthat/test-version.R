# The version is written once, in the workspace Cargo.toml; DESCRIPTION must repeat it
# (R reads no other file), and the compiled core reports the version it was built from.
test_that("DESCRIPTION's version is the Rust workspace version", {
  expect_identical(as.character(utils::packageVersion("tasker")), tasker:::tk_native_version())
  root <- Sys.getenv("TASKER_REPO_ROOT")
  skip_if(root == "", "TASKER_REPO_ROOT is not set (scripts/test-r.sh sets it)")
  cargo <- readLines(file.path(root, "Cargo.toml"))
  workspace <- sub('^version = "(.*)"$', "\\1", grep('^version = "', cargo, value = TRUE)[[1]])
  expect_identical(as.character(utils::packageVersion("tasker")), workspace)
})
