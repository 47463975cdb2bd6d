# What R's check_config says for each case of a JSON list: Rscript r_impl/tests/config_cases.R CASES.json
#
# CASES.json: [[n_tiles or null, ["key=value", ...]], ...]. Prints one line per case: "accepted" or the
# config_error message, so that tests/test_hardening.py can compare R's words with Python's, case by case.
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
tests_dir <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
Sys.setenv(TAILINGS_PARITY_ROOT = normalizePath(file.path(tests_dir, "..", "..")))
source(file.path(tests_dir, "..", "R", "config.R"))
cases <- jsonlite::fromJSON(commandArgs(trailingOnly = TRUE)[1], simplifyVector = FALSE)
for (case in cases) {
  overrides <- unlist(case[[2]])
  said <- tryCatch({
    check_config(load_config("smoke", overrides), case[[1]])
    "accepted"
  }, config_error = function(e) conditionMessage(e))
  cat(said, "\n", sep = "")
}
