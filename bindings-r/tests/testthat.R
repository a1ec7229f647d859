library(testthat)
library(tasker)

test_check("tasker")
