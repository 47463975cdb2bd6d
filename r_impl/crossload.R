# Rscript entry of the R cross-loader: Rscript r_impl/crossload.R JOBS.json
#
# Sources the R twin (r_impl/R/, as the worker does) and runs run_crossload(); exit 0 when it ran (each job's
# own result is in its JSON line), 1 with an "error: ..." line when R or Python stops outside the jobs.
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
entry_dir <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
source(file.path(entry_dir, "worker.R"))  # source_r_impl(); its own entry code runs only as a script
args <- commandArgs(trailingOnly = TRUE)
status <- tryCatch({
  source_r_impl(file.path(entry_dir, "R"))
  run_crossload(args[1])
  0L
}, error = function(e) {
  message("error: ", conditionMessage(e))
  1L
})
exit_now(status)  # r_impl/worker.R: without Python's teardown
