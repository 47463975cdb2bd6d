# Rscript entry of the R predictor: Rscript r_impl/predict.R SPEC.json
#
# Sources the R twin (r_impl/R/, as the worker does) and runs run_predict(); exit 0 with one JSON line, 1 with an
# "error: ..." line when R or Python stops.
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
entry_dir <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
source(file.path(entry_dir, "worker.R"))  # source_r_impl(); its own entry code runs only as a script
args <- commandArgs(trailingOnly = TRUE)
status <- tryCatch({
  source_r_impl(file.path(entry_dir, "R"))
  record <- run_predict(args[1])
  cat(jsonlite::toJSON(list(tiles = length(record$tiles), skipped = length(record$skipped),
                            notice = record$notice), auto_unbox = TRUE, null = "null"), "\n", sep = "")
  0L
}, error = function(e) {
  message("error: ", conditionMessage(e))
  1L
})
quit(status = status, save = "no")
