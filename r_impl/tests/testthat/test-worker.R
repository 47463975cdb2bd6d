# r_impl/worker.R's start-up: the R twin's files sourced in order, and Keras imported on a Python thread while R
# loads its readers.
source(file.path(root, "r_impl", "worker.R"), local = TRUE)

test_that("source_r_impl sources every file in sorted order and names a broken file", {
  dir <- withr::local_tempdir()
  r_dir <- file.path(dir, "R")
  dir.create(r_dir)
  writeLines("tp_source_probe <- function(x) x * 10", file.path(r_dir, "a.R"))
  writeLines("tp_source_probe2 <- function(x) tp_source_probe(x) + 1", file.path(r_dir, "b.R"))
  on.exit(rm(list = c("tp_source_probe", "tp_source_probe2"), envir = globalenv()), add = TRUE)
  source_r_impl(r_dir)
  expect_identical(tp_source_probe2(2), 21)
  writeLines("tp_source_probe <- function(x) {", file.path(r_dir, "a.R"))  # a parse error
  expect_error(source_r_impl(r_dir), "a.R: ", fixed = TRUE)
})

test_that("import_in_background imports on a Python thread and re-raises an import's error on result()", {
  future <- import_in_background("json")
  skip_if(is.null(future), "Python was not started by reticulate here")
  expect_identical(reticulate::py_to_r(future$result()$`__name__`), "json")
  missing <- import_in_background("tailings_parity_no_such_module")
  expect_error(missing$result(), "tailings_parity_no_such_module")
})
