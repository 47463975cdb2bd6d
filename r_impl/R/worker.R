# One training run in this process, everything written to a worker folder; twin of python_impl/worker.py.
#
# Run by r_impl/worker.R (Rscript as host) or by parity/run/workers.py through rpy2 (Python as host).

WORKER_IMPL <- "r-rscript"

#' Return the Python reticulate is bound to; stop naming it, why it was chosen, and the fix when TensorFlow or
#' Keras is missing there (a wrong RETICULATE_PYTHON is the classic R TensorFlow failure).
check_python <- function() {
  python <- reticulate::import("sys")$executable
  # Found, not imported (as Python's twin): py_module_available would import TensorFlow here, 3-4 s that
  # run_worker spends on a Python thread instead (import_in_background).
  find_spec <- py_attr("importlib.util", "find_spec")
  missing <- Filter(function(m) is.null(reticulate::py_to_r(find_spec(m))), c("tensorflow", "keras"))
  if (length(missing) > 0L) {
    chosen <- Sys.getenv("RETICULATE_PYTHON", "")
    why <- if (nzchar(chosen)) sprintf(" (RETICULATE_PYTHON=%s)", chosen) else ""
    stop(sprintf(paste0("reticulate is bound to the Python %s%s, which cannot import %s: set RETICULATE_PYTHON ",
                        "to the project's venv Python (make setup writes it to .Renviron), or run ",
                        "`tailings-parity doctor`"), python, why, paste(missing, collapse = ", ")), call. = FALSE)
  }
  python
}

#' Start importing Python's `module` (and what it imports) on a Python thread; returns its future, whose
#' `result()` waits for it and raises the import's error. Called when R is the host (r-rscript) only.
#'
#' R only: Python's worker has nothing to do while TensorFlow imports; R loads its own readers then (terra, its
#' C++ modules), on R's thread, while reticulate lets Python threads run (reticulate >= 1.39, when it started
#' Python). Under rpy2, R's event callbacks take Python's lock, and beside the importing thread terra's loading
#' took longer than the import saved: there the import waits. One thread imports, so the modules import as they
#' would on the main thread. Its gain: parity/BENCHMARKS.md.
import_in_background <- function(module) {
  pool <- py_attr("concurrent.futures", "ThreadPoolExecutor")(max_workers = 1L)
  future <- pool$submit(py_attr("importlib", "import_module"), module)
  pool$shutdown(wait = FALSE)  # its one thread ends when the import does
  future
}

#' Train once as the config and manifest say; write the worker files to `out_dir`; return the timings.
#'
#' `launched_at` (epoch seconds, when the spawner started this process) gives start_to_ready.
run_worker <- function(config_path, manifest_path, out_dir, launched_at = NULL) {
  now <- function() as.numeric(Sys.time())
  dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
  started <- now()
  impl <- Sys.getenv("TAILINGS_PARITY_IMPL", WORKER_IMPL)
  log_progress(out_dir, sprintf("phase start pid %d", Sys.getpid()))
  python <- check_python()
  manifest <- read_manifest(manifest_path)
  # The config's rules ([schema]), those that name the data counted on the manifest's tiles: a worker run by
  # hand refuses a bad config as `run` does, before it trains.
  n_tiles <- sum(vapply(c("train", "val", "test"), function(split) length(manifest[[split]]), integer(1)))
  config <- check_config(read_config(config_path), n_tiles)
  # Keras and TensorFlow on a Python thread while R loads its readers (after the config: its checks call Python,
  # which would wait for the importing thread).
  importing <- if (identical(impl, "r-rscript")) import_in_background("keras")
  # Libraries load at start-up in both languages; R's readers first, as TensorFlow imports meanwhile.
  prepare_readers(resolve_threads(config)$threads_intra, config$encoding)
  if (!is.null(importing)) tryCatch(importing$result(), error = function(e) {
    stop(sprintf("reticulate's Python %s found Keras but cannot import it (%s); run `tailings-parity doctor`",
                 python, conditionMessage(e)), call. = FALSE)
  })
  threads <- set_determinism(config)$threads_intra  # before any TensorFlow op
  ready <- now()
  origin <- if (is.null(launched_at)) started else launched_at
  timings <- list(start_to_ready = ready - origin)

  log_progress(out_dir, "phase data")
  t <- now()
  np <- py_module("numpy")
  check_files(manifest)  # refuse a tile changed since the manifest was made, by name
  splits <- list()
  hashes <- list()
  for (split in c("train", "val")) {
    # float32 NumPy arrays in C order, as Python's: hashing, saving and training all use them.
    splits[[split]] <- load_tiles(manifest$data_dir, manifest[[split]], config)
    image_hashes <- row_sha256(splits[[split]]$images)  # array_sha256 of each tile, as Python's images[k]
    mask_hashes <- row_sha256(np$squeeze(splits[[split]]$masks, -1L))  # as Python's masks[k, :, :, 0]
    for (k in seq_along(manifest[[split]])) {
      hashes[[as.character(manifest[[split]][k])]] <- list(image = image_hashes[k], mask = mask_hashes[k])
    }
  }
  save_json(hashes, file.path(out_dir, "input_hashes.json"))
  np$savez(file.path(out_dir, "inputs_val.npz"), images = splits$val$images, masks = np$squeeze(splits$val$masks, -1L))
  timings$data <- now() - t

  timings <- c(timings, train(config, manifest, splits, out_dir))
  timings$total <- now() - origin
  save_json(timings, file.path(out_dir, "timings.json"))
  save_json(list(peak_rss_mb = peak_memory_mb()), file.path(out_dir, "memory.json"))
  save_json(environment_record(config, impl), file.path(out_dir, "environment.json"))
  log_progress(out_dir, "phase done")
  invisible(timings)
}
