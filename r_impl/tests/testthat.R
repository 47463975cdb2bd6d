# The R side's own tests (testthat): Rscript r_impl/tests/testthat.R [FILTER]
#
# Each test runs the R twin against its Python twin in one process (Python reached through reticulate, as
# the R worker reaches Keras), so a drift shows as a failed expectation naming the function. The README's
# test command runs this through tests/test_r_side.py. Exit 1 when any expectation fails.
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
tests_dir <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
filter <- commandArgs(trailingOnly = TRUE)[1]
results <- testthat::test_dir(file.path(tests_dir, "testthat"), reporter = "summary", stop_on_failure = FALSE,
                              filter = if (is.na(filter)) NULL else filter)
failed <- sum(vapply(results, function(r) sum(vapply(r$results, function(x) !inherits(x, "expectation_success") &&
                                                       !inherits(x, "expectation_skip"), logical(1))), integer(1)))
quit(status = if (failed > 0) 1L else 0L, save = "no")
