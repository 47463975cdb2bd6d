# r_impl/worker.R's start-up: the R twin's files byte-compiled once into a cache (as Python keeps __pycache__),
# and Keras imported on a Python thread while R loads its readers.
source(file.path(root, "r_impl", "worker.R"), local = TRUE)

test_that("source_r_impl compiles a file once into the cache, loads it compiled, and follows its edits", {
  dir <- withr::local_tempdir()
  r_dir <- file.path(dir, "R")
  cache <- file.path(dir, "cache")
  dir.create(r_dir)
  writeLines("tp_cache_probe <- function(x) x + 1", file.path(r_dir, "probe.R"))
  on.exit(rm(list = "tp_cache_probe", envir = globalenv()), add = TRUE)
  source_r_impl(r_dir, cache)
  first <- list.files(cache)
  expect_length(first, 1L)
  expect_match(first, sprintf("^probe-[0-9a-f]{32}-R%s\\.Rc$", getRversion()))
  expect_identical(tp_cache_probe(1), 2)
  expect_identical(class(.Internal(bodyCode(tp_cache_probe))), "bytecode")  # compiled, not a call to interpret
  # Loaded from the cache the second time: a stale entry is never rewritten.
  stamp <- file.mtime(file.path(cache, first))
  source_r_impl(r_dir, cache)
  expect_identical(list.files(cache), first)
  expect_identical(file.mtime(file.path(cache, first)), stamp)
  # An edit is a new text, so a new entry: the cache never serves old code.
  writeLines("tp_cache_probe <- function(x) x + 2", file.path(r_dir, "probe.R"))
  source_r_impl(r_dir, cache)
  expect_length(list.files(cache), 2L)
  expect_identical(tp_cache_probe(1), 3)
})

test_that("source_r_impl sources a file as is where the cache cannot be written, and names a broken file", {
  dir <- withr::local_tempdir()
  r_dir <- file.path(dir, "R")
  dir.create(r_dir)
  writeLines("tp_cache_probe <- function(x) x * 10", file.path(r_dir, "probe.R"))
  on.exit(rm(list = "tp_cache_probe", envir = globalenv()), add = TRUE)
  blocker <- file.path(dir, "not-a-folder")
  writeLines("", blocker)
  source_r_impl(r_dir, file.path(blocker, "cache"))  # a file stands where the cache folder would go
  expect_identical(tp_cache_probe(2), 20)
  expect_false(dir.exists(file.path(blocker, "cache")))
  writeLines("tp_cache_probe <- function(x) {", file.path(r_dir, "probe.R"))  # a parse error
  expect_error(source_r_impl(r_dir, file.path(dir, "cache")), "probe.R: ", fixed = TRUE)
  expect_length(list.files(file.path(dir, "cache"), pattern = "\\.Rc$"), 0L)  # nothing half-written stays
})

test_that("import_in_background imports on a Python thread and re-raises an import's error on result()", {
  future <- import_in_background("json")
  skip_if(is.null(future), "Python was not started by reticulate here")
  expect_identical(reticulate::py_to_r(future$result()$`__name__`), "json")
  missing <- import_in_background("tailings_parity_no_such_module")
  expect_error(missing$result(), "tailings_parity_no_such_module")
})
