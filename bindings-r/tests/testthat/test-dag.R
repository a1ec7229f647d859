test_that("depends_on registers cross-stage edges, single and bulk", {
  local_tasker_db()
  register_tasks(data.frame(
    stage = c("ingest", "prep", "model"), name = c("download", "clean", "fit"),
    depends_on = I(list(NULL, "ingest/download", c("prep/clean", "ingest/download")))
  ))
  register_task("report", "render", depends_on = "model/fit")
  # A character column: one name per row, NA for none; a bare name is the same stage.
  register_tasks(data.frame(stage = c("prep", "prep"), name = c("stats", "extra"),
                            depends_on = c("clean", NA)))
  dag <- get_dag()
  expect_s3_class(dag, "tasker_dag")
  edges <- paste(dag$edges$from, dag$edges$to)
  expect_setequal(edges, c("ingest/download prep/clean", "prep/clean model/fit",
                           "ingest/download model/fit", "model/fit report/render",
                           "prep/clean prep/stats"))
  expect_equal(dag$nodes$rank[dag$nodes$id == "report/render"], 3L)
})

test_that("cycles and unknown names are refused and store nothing", {
  local_tasker_db()
  register_task("a", "x")
  register_task("b", "y", depends_on = "a/x")
  expect_error(register_task("a", "x", depends_on = "b/y"), "a/x -> b/y -> a/x",
               class = "tasker_argument")
  expect_error(register_tasks(data.frame(stage = c("c", "c"), name = c("new", "z"),
                                         depends_on = I(list(NULL, "b/nope")))),
               "b/nope", class = "tasker_argument")
  expect_equal(nrow(get_registered_tasks(stage = "c")), 0)
  expect_equal(nrow(get_dag()$edges), 1)
  expect_error(register_task("a", "x", depends_on = NA_character_), class = "tasker_argument")
})

test_that("a failed upstream blocks what is below it; a running one makes it wait", {
  local_tasker_db()
  register_tasks(data.frame(
    stage = c("ingest", "ingest", "prep", "prep", "model"), name = c("a", "b", "c", "d", "e"),
    depends_on = I(list(NULL, NULL, "ingest/a", "ingest/b", c("prep/c", "prep/d")))
  ))
  task_start("ingest", "a", quiet = TRUE)
  task_complete(quiet = TRUE)
  task_start("prep", "c", quiet = TRUE)
  task_fail("bad input", quiet = TRUE)
  task_start("ingest", "b", quiet = TRUE)
  dag <- get_dag()
  n <- dag$nodes
  rownames(n) <- n$id
  expect_true(n["model/e", "blocked"])
  expect_equal(n["model/e", "blocked_by"], "prep/c")
  expect_true(n["prep/d", "waiting"])
  expect_false(n["prep/d", "blocked"])
  expect_equal(n["prep/d", "waiting_for"], "ingest/b")
  expect_equal(n["prep/c", "status"], "FAILED")
  out <- capture.output(print(dag))
  expect_true(any(grepl("model/e.*\\[blocked by prep/c\\]", out)))
  expect_match(format(dag, "dot"), "\"prep/c\" -> \"model/e\";", fixed = TRUE)
  expect_match(format(dag, "mermaid"), "^flowchart LR")
  expect_error(format(dag, "svg"), "svg", class = "tasker_argument")
  task_complete(quiet = TRUE)
  n <- get_dag()$nodes
  expect_false(n$waiting[n$id == "prep/d"])
})
