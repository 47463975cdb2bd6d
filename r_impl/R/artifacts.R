# What a worker writes to its folder (FORMATS.md "Worker output"); twin of python_impl/artifacts.py.
#
# Arrays go through numpy (np.save / np.savez) so that both languages write the same file format; an R double
# holding a float32 value converts back to the same float32 exactly.

# Python modules already imported, by name (py_module): reticulate::import has a cost per call, which the
# per-file and per-tile hashing of the data phase would pay hundreds of times (Python caches its imports itself).
PY_MODULES <- new.env(parent = emptyenv())

#' The Python module `name` without conversion (convert = FALSE), imported once per R session.
py_module <- function(name) {
  module <- PY_MODULES[[name]]
  if (is.null(module)) {
    module <- if (identical(name, "builtins")) reticulate::import_builtins(convert = FALSE) else
      reticulate::import(name, convert = FALSE)
    assign(name, module, envir = PY_MODULES)
  }
  module
}

#' The attribute `name` of Python module `module` (py_module), looked up once per R session: `$` on a module
#' wraps the function in R at each call, which the data phase's per-file and per-tile calls would pay hundreds of
#' times.
py_attr <- function(module, name) {
  key <- paste0(module, "$", name)
  value <- PY_MODULES[[key]]
  if (is.null(value)) {
    value <- reticulate::py_get_attr(py_module(module), name)
    assign(key, value, envir = PY_MODULES)
  }
  value
}

#' Python's isinstance(x, cls) as an R logical.
is_instance <- function(x, cls) {
  reticulate::py_to_r(py_attr("builtins", "isinstance")(x, cls))
}

#' Every variable of `model` in model order, keyed "<layer name>/<variable name>", as float32 numpy arrays.
model_weights <- function(model) {
  np <- py_module("numpy")
  weights <- list()
  for (layer in model$layers) {
    for (variable in layer$weights) {
      weights[[paste0(layer$name, "/", variable$name)]] <- np$asarray(variable$numpy(), dtype = "float32")
    }
  }
  weights
}

#' Write model_weights(model) to `path` (.npz, one array per variable).
save_weights_npz <- function(model, path) {
  np <- py_module("numpy")
  do.call(np$savez, c(list(path), model_weights(model)))
  invisible(path)
}

#' Write `obj` as indented JSON through Python's json module.
#'
#' jsonlite prints at most 15 significant digits, which does not round-trip every double; Python's json does,
#' and it makes the R and Python files byte-comparable. Length-1 vectors become scalars, lists stay lists.
save_json <- function(obj, path) {
  json <- reticulate::import("json")
  writeLines(json$dumps(reticulate::r_to_py(obj), indent = 2L), path)
  invisible(path)
}

#' Write `x` (R array or numpy array) as float32 .npy in C order.
save_array <- function(array, path) {
  np <- py_module("numpy")
  np$save(path, np$ascontiguousarray(np$asarray(array, dtype = "float32")))
  invisible(path)
}

#' SHA-256 of the float32 C-order bytes of `array` (input_hashes.json).
array_sha256 <- function(array) {
  np <- py_module("numpy")
  # $data: the array's own memory, hashed without the copy that tobytes() makes (which R then kept alive until
  # its next garbage collection).
  contiguous <- py_attr("numpy", "ascontiguousarray")(array, dtype = "float32")
  reticulate::py_to_r(py_attr("hashlib", "sha256")(contiguous$data)$hexdigest())
}

#' array_sha256 of every `array[k]` along the first axis, as a character vector, in three calls into Python
#' (R only: array_sha256 per tile would cost several reticulate calls a tile).
row_sha256 <- function(array) {
  contiguous <- py_attr("numpy", "ascontiguousarray")(array, dtype = "float32")
  digests <- py_attr("builtins", "map")(py_attr("hashlib", "sha256"), contiguous)  # rows: C-contiguous float32
  hexes <- py_attr("builtins", "map")(py_attr("operator", "methodcaller")("hexdigest"), digests)
  as.character(reticulate::py_to_r(py_attr("builtins", "list")(hexes)))
}

#' list(image, mask) digests (the first 16 hex digits of array_sha256) of every row of a batch as fed to the
#' training step, after crop and augmentation (batch_order.json samples); `x`, `y` NumPy arrays.
fed_digests <- function(x, y) {
  images <- substr(row_sha256(x), 1L, 16L)
  masks <- substr(row_sha256(y), 1L, 16L)
  lapply(seq_along(images), function(k) list(images[k], masks[k]))
}

#' Every operation of `model` after its inputs, in graph order, and its output on the tiles `x` (one batch,
#' inference mode): list(ops, values), the values float32 NumPy arrays. An operation without one output of its
#' own (a layer called twice) is left out.
layer_outputs <- function(model, x) {
  keras <- py_module("keras")
  ops <- list()
  outputs <- list()
  for (op in model$operations) {
    if (is_instance(op, keras$layers$InputLayer)) next
    out <- tryCatch(reticulate::py_get_attr(op, "output"), error = function(e) NULL)  # shared: one per call
    if (is.null(out) || !is_instance(out, keras$KerasTensor)) next
    ops[[length(ops) + 1L]] <- op
    outputs[[length(outputs) + 1L]] <- out
  }
  inputs <- model$inputs
  extractor <- keras$Model(if (length(inputs) == 1L) inputs[[1]] else inputs, outputs)
  values <- extractor(x, training = FALSE)
  np <- py_module("numpy")
  list(ops = ops, values = lapply(seq_along(ops) - 1L, function(k) {
    np$asarray(reticulate::py_get_item(values, k), dtype = "float32")
  }))
}

#' forward_layers.json and forward_layers.npz: per operation of the graph (layer_outputs) its place, name, class,
#' shape and the sha256 of its output; the output itself when it has at most layer_full_max values, else
#' layer_sample values at evenly spaced positions of its C-order values ([rules]).
save_layer_outputs <- function(model, x, config, out_dir) {
  np <- py_module("numpy")
  rules <- config_rules(config)
  full_max <- as.integer(rules$layer_full_max)
  n_sample <- as.integer(rules$layer_sample)
  names_all <- vapply(model$operations, function(op) op$name, "")
  found <- layer_outputs(model, x)
  records <- list()
  arrays <- list()
  for (k in seq_along(found$ops)) {
    op <- found$ops[[k]]
    value <- found$values[[k]]
    index <- match(op$name, names_all) - 1L  # 0-based, as Python's
    key <- sprintf("layer_%04d", index)
    flat <- np$ravel(np$ascontiguousarray(value))
    size <- reticulate::py_to_r(flat$size)
    stored <- if (size <= full_max) "full" else "sample"
    arrays[[key]] <- if (stored == "full") value else
      np$take(flat, np$linspace(0, size - 1L, n_sample)$astype("int64"))
    records[[k]] <- list(index = index, key = key, name = op$name, class_name = op$`__class__`$`__name__`,
                         shape = as.list(as.integer(reticulate::py_to_r(value$shape))),
                         sha256 = array_sha256(value), stored = stored)
  }
  do.call(np$savez, c(list(file.path(out_dir, "forward_layers.npz")), arrays))
  save_json(list(full_max = full_max, sample = n_sample, layers = records), file.path(out_dir, "forward_layers.json"))
  invisible(out_dir)
}

#' Peak resident memory of this process (VmHWM of /proc/self/status) in MiB; NULL where unavailable.
peak_memory_mb <- function() {
  lines <- tryCatch(readLines("/proc/self/status"), error = function(e) character(0), warning = function(w) character(0))
  hit <- grep("^VmHWM:", lines, value = TRUE)
  if (length(hit) == 0L) return(NULL)
  as.numeric(strsplit(trimws(sub("^VmHWM:", "", hit[1])), "[[:space:]]+")[[1]][1]) / 1024
}

#' Append `line` to progress.log and print it to stdout, flushed (the spawner streams it).
log_progress <- function(out_dir, line) {
  cat(line, "\n", sep = "", file = file.path(out_dir, "progress.log"), append = TRUE)
  cat(line, "\n", sep = "")
  flush(stdout())
  invisible(line)
}

#' The CPU model name from /proc/cpuinfo, or R's machine string.
cpu_model <- function() {
  lines <- tryCatch(readLines("/proc/cpuinfo"), error = function(e) character(0), warning = function(w) character(0))
  hit <- grep("^model name", lines, value = TRUE)
  if (length(hit) == 0L) return(Sys.info()[["machine"]])
  trimws(sub("^[^:]*:", "", hit[1]))
}

#' Whether TensorFlow's op determinism is on (TensorFlow exposes the query only in its private config).
op_determinism_enabled <- function() {
  isTRUE(reticulate::import("tensorflow.python.framework.config")$is_op_determinism_enabled())
}

#' Versions, threads, determinism flags and devices as this worker's language (R) sees them.
environment_record <- function(config, impl) {
  tf <- reticulate::import("tensorflow")
  keras <- reticulate::import("keras")
  np <- reticulate::import("numpy")
  sys <- reticulate::import("sys")
  # In the rpy2 case reticulate runs inside the Python process that embeds R, so rpy2 is loaded there.
  rpy2_version <- reticulate::py_eval(
    "getattr(__import__('sys').modules.get('rpy2'), '__version__', None)")
  env_keys <- c("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "OMP_NUM_THREADS",
                "CUDA_VISIBLE_DEVICES", "GLIBC_TUNABLES", "R_VSIZE")
  env <- lapply(env_keys, function(k) if (nzchar(Sys.getenv(k))) Sys.getenv(k) else NULL)
  names(env) <- env_keys
  devices <- lapply(tf$config$list_physical_devices(), function(d) paste0(d$device_type, ":", d$name))
  info <- Sys.info()
  list(
    impl = impl,
    language = "r",
    r_version = R.version.string,
    reticulate_version = as.character(utils::packageVersion("reticulate")),
    rpy2_version = rpy2_version,
    python_version = sys$version,
    python_executable = sys$executable,
    tensorflow_version = tf$`__version__`,
    keras_version = keras$`__version__`,
    numpy_version = np$`__version__`,
    threads_intra = tf$config$threading$get_intra_op_parallelism_threads(),
    threads_inter = tf$config$threading$get_inter_op_parallelism_threads(),
    threads_setting = c(as.character(config$threads_intra), as.character(config$threads_inter)),
    available_cores = available_cores(),
    op_determinism = op_determinism_enabled(),
    seed = as.integer(config$seed),
    jit_compile = FALSE,
    env = env,
    devices = devices,
    cpu = cpu_model(),
    cpu_count = parallel::detectCores(),
    platform = paste(info[["sysname"]], info[["release"]], info[["machine"]])  # R's own view, not Python's platform()
  )
}
