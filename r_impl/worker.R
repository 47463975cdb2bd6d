# The R worker's entry point: Rscript r_impl/worker.R --config C --manifest M --out DIR [--r-dir DIR]
#
# Sources every r_impl/R/*.R (or those of --r-dir) in sorted order, then runs run_worker(). Exit status 0 on
# success, 1 with one "error: ..." line on stderr when R or Python stops, 2 for a usage error or a config
# mistake (check_config).
# parity/run/workers.py sources this file through rpy2 too; then it only defines the functions below.

#' Source the R twin's files of `r_dir` in sorted (C locale) order into the global environment; a file that does
#' not parse or run stops naming it.
source_r_impl <- function(r_dir) {
  files <- list.files(r_dir, pattern = "\\.R$", full.names = TRUE)
  if (length(files) == 0L) stop(sprintf("--r-dir %s: no .R files there", r_dir), call. = FALSE)
  for (f in sort(files, method = "radix")) {  # radix sorts bytewise, like Python's sorted()
    tryCatch(source(f, local = globalenv()),
             error = function(e) stop(sprintf("%s: %s", f, conditionMessage(e)), call. = FALSE))
  }
  invisible(files)
}

#' End this Rscript process with `status`. Every file is written and closed by then; when Python runs in the
#' process, it leaves through os._exit, without the teardown of Python and TensorFlow that R's own exit starts
#' (about 1.4 s of a worker's wall time), after removing R's session folder as R's exit would.
exit_now <- function(status) {
  if (reticulate::py_available(initialize = FALSE)) {
    flush(stdout())
    flush(stderr())
    unlink(tempdir(), recursive = TRUE)
    reticulate::import("os")$`_exit`(as.integer(status))
  }
  quit(status = status, save = "no")
}

#' Parse the worker's arguments, source the R twin and run it; returns the exit status (never quits).
worker_main <- function(args, entry_dir = getwd()) {
  usage <- "usage: worker.R --config C --manifest M --out DIR [--r-dir DIR]"
  values <- list(config = NULL, manifest = NULL, out = NULL, `r-dir` = file.path(entry_dir, "R"))
  i <- 1L
  while (i <= length(args)) {
    key <- sub("^--", "", args[i])
    if (!startsWith(args[i], "--") || !key %in% names(values) || i == length(args)) {
      message("error: unexpected argument '", args[i], "'; ", usage)
      return(2L)
    }
    values[[key]] <- args[i + 1L]
    i <- i + 2L
  }
  for (key in c("config", "manifest", "out")) {
    if (is.null(values[[key]])) {
      message("error: --", key, " is required; ", usage)
      return(2L)
    }
  }
  for (key in c("config", "manifest")) {
    if (!file.exists(values[[key]])) {
      message("error: --", key, " ", values[[key]], ": no such file")
      return(2L)
    }
  }
  if (!dir.exists(values[["r-dir"]])) {
    message("error: --r-dir ", values[["r-dir"]], ": no such folder")
    return(2L)
  }
  launched <- Sys.getenv("TAILINGS_PARITY_LAUNCHED_AT", "")
  status <- tryCatch({
    source_r_impl(values[["r-dir"]])
    run_worker(values$config, values$manifest, values$out, if (nzchar(launched)) as.numeric(launched) else NULL)
    0L
  }, config_error = function(e) {
    message("error: ", conditionMessage(e))  # a config mistake: one line naming the key, exit 2 (as `run`)
    2L
  }, error = function(e) {
    # The spawner turns this line into a failed result; a Python error arrives here with its message.
    message("error: ", conditionMessage(e))
    1L
  })
  status
}

if (sys.nframe() == 0L) {
  # Rscript as host: find this file's folder from --file= to locate R/ beside it.
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  entry_dir <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1]))) else getwd()
  .r_impl_dir <- entry_dir
  exit_now(worker_main(commandArgs(trailingOnly = TRUE), entry_dir))
}
