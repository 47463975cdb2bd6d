# Load saved models and predict the manifest's fixed batch; twin of python_impl/crossload.py.
#
# The harness (parity/run/crossload.py) runs this through r_impl/crossload.R after the workers: every worker's
# model.keras is loaded here the way an R user would (keras$models$load_model, via load_saved) and must predict
# the fixed batch as the saving worker did (in its batches). Arrays stay NumPy, so that no R layout enters the check. One JSON line per job.

#' Load `model_path`, predict the images of `inputs_path` `batch_size` at a time, as the worker did, and save
#' rows `fixed` (0-based) as (N, H, W) to `out_path`. The same batches: on some CPUs a row's low bits depend on
#' the batch it falls in.
predict_saved <- function(model_path, inputs_path, fixed, out_path, config) {
  np <- py_module("numpy")
  model <- load_saved(model_path, config)
  x <- reticulate::py_get_item(np$load(inputs_path), "images")
  y <- np$asarray(model$predict(x, batch_size = as.integer(config$batch_size), verbose = 0L), dtype = "float32")
  # array(): a length-1 R vector would become a Python scalar, and np.take(y, scalar) drops the batch axis.
  rows <- np$take(y, np$array(array(as.integer(unlist(fixed))), dtype = "int64"), axis = 0L)
  np$save(out_path, np$ascontiguousarray(np$squeeze(rows, axis = -1L)))
  invisible(out_path)
}

#' Run every job of `jobs_path` with the run's threads and determinism; returns how many loaded.
run_crossload <- function(jobs_path) {
  spec <- jsonlite::fromJSON(jobs_path, simplifyVector = FALSE)
  config <- read_config(spec$config)
  set_determinism(config)  # before any TensorFlow op, as in the workers
  done <- 0L
  for (job in spec$jobs) {
    rec <- tryCatch({
      predict_saved(job$model, job$inputs, job$fixed, job$out, config)
      done <- done + 1L
      list(ok = TRUE, error = NULL, file = job$out_name)
    }, error = function(e) list(ok = FALSE, error = conditionMessage(e), file = job$out_name))
    cat(jsonlite::toJSON(list(key = job$key, rec = rec), auto_unbox = TRUE, null = "null"), "\n", sep = "")
  }
  done
}
