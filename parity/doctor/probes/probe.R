# The R side of `tailings-parity doctor` (parity/doctor.py runs it; python_side.py is its Python twin).
#
# Run as host:      TP_DOCTOR_MODE=host Rscript probe.R
# Run embedded:     sourced by embedded.py inside a Python process through rpy2 (TP_DOCTOR_MODE=embedded).
# Environment: TP_DOCTOR_OUT (JSON file written after every section, so a crash leaves what was seen and the
# section it died in), TP_DOCTOR_SECTIONS (comma list), TP_DOCTOR_WEIGHTS (.npz of the smoke fit),
# TP_DOCTOR_RETICULATE_EMBEDDED_MIN (older reticulate is not loaded under rpy2: it would kill the process).
local({
  mode <- Sys.getenv("TP_DOCTOR_MODE", "host")
  out <- Sys.getenv("TP_DOCTOR_OUT", "doctor-r.json")
  wanted <- strsplit(Sys.getenv("TP_DOCTOR_SECTIONS",
                                "r,packages,reticulate,python,numpy,tensorflow,devices,fit"), ",")[[1]]
  weights_file <- Sys.getenv("TP_DOCTOR_WEIGHTS", "doctor-r-weights.npz")
  embedded_min <- Sys.getenv("TP_DOCTOR_RETICULATE_EMBEDDED_MIN", "1.31")

  result <- list(probe = paste0("r-", mode), running = NA, sections = list())
  save <- function() {
    jsonlite::write_json(result, out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE)
  }

  # One section: skipped when a section it needs did not pass; errors and warnings kept, never raised.
  run_section <- function(name, requires = character(), fn) {
    if (!(name %in% wanted)) return(invisible(NULL))
    failed <- Filter(function(r) !isTRUE(result$sections[[r]]$ok), requires)
    if (length(failed)) {
      result$sections[[name]] <<- list(ok = FALSE, skipped = paste0("needs ", paste(failed, collapse = ", "),
                                                                   ", which did not pass"))
      save()
      return(invisible(NULL))
    }
    result$running <<- name
    save()
    warnings <- character()
    value <- tryCatch(
      withCallingHandlers(fn(), warning = function(w) {
        warnings <<- c(warnings, conditionMessage(w))
        invokeRestart("muffleWarning")
      }),
      error = function(e) list(ok = FALSE, error = conditionMessage(e)))
    if (is.null(value$ok)) value$ok <- TRUE
    if (length(warnings)) value$warnings <- as.list(warnings)
    result$sections[[name]] <<- value
    result$running <<- NA
    save()
  }

  env_seen <- function(names) {
    vals <- lapply(names, function(n) { v <- Sys.getenv(n, NA); if (is.na(v)) NULL else v })
    names(vals) <- names
    Filter(Negate(is.null), vals)
  }

  run_section("r", fn = function() {
    list(version = R.version.string, version_number = paste(R.version$major, R.version$minor, sep = "."),
         r_home = R.home(), rscript = file.path(R.home("bin"), "Rscript"), lib_paths = as.list(.libPaths()),
         pid = Sys.getpid())
  })

  run_section("packages", fn = function() {
    # keras3 / keras / tensorflow R packages: information only (the project reaches Keras through reticulate).
    one <- function(p) {
      v <- tryCatch(as.character(utils::packageVersion(p)), error = function(e) NA)
      list(installed = !is.na(v), version = v)
    }
    list(keras3 = one("keras3"), keras = one("keras"), tensorflow = one("tensorflow"))
  })

  run_section("reticulate", fn = function() {
    # Every copy on the library path, in search order: the first is what library(reticulate) loads.
    copies <- list()
    for (lib in .libPaths()) {
      desc <- file.path(lib, "reticulate", "DESCRIPTION")
      if (file.exists(desc)) {
        copies[[length(copies) + 1]] <- list(lib = lib, version = unname(read.dcf(desc, "Version")[1, 1]))
      }
    }
    if (!length(copies)) stop("there is no package called 'reticulate' in ", paste(.libPaths(), collapse = ":"))
    list(version = copies[[1]]$version, lib = copies[[1]]$lib, copies = copies)
  })

  run_section("python", fn = function() {
    version <- as.character(utils::packageVersion("reticulate"))
    if (mode == "embedded" && package_version(version) < embedded_min) {
      stop(sprintf(paste0("reticulate %s is too old to run embedded under rpy2 (needs >= %s); not loaded, ",
                          "because R's garbage collector would kill this process with 'Fatal Python error: ",
                          "PyThreadState_Get: the function must be called with the GIL held'"),
                   version, embedded_min))
    }
    library(reticulate)
    cfg <- reticulate::py_config()
    sys <- reticulate::import("sys")
    os <- reticulate::import("os")
    sysconfig <- reticulate::import("sysconfig")
    list(reticulate = version, executable = sys$executable, prefix = sys$prefix,
         version = sys$version, config_python = cfg$python, libpython = cfg$libpython,
         forced = if (is.null(cfg$forced)) NA else cfg$forced,
         shared = sysconfig$get_config_var("Py_ENABLE_SHARED"),
         python_pid = os$getpid(), r_pid = Sys.getpid(),
         env = env_seen(c("RETICULATE_PYTHON", "RETICULATE_PYTHON_ENV", "VIRTUAL_ENV", "CONDA_PREFIX",
                          "PYTHONHOME", "PYTHONPATH")),
         path_python = unname(Sys.which("python3")))
  })

  run_section("numpy", requires = "python", fn = function() {
    np <- reticulate::import("numpy", convert = FALSE)
    # 24 distinct values: R fills the first index fastest (column-major), NumPy the last (row-major).
    x <- array(as.numeric(1:24), dim = c(2, 3, 4))
    a <- reticulate::np_array(x, dtype = "float32")
    shape <- as.integer(unlist(reticulate::py_to_r(a$shape)))
    misplaced <- list()
    for (i in 1:2) for (j in 1:3) for (k in 1:4) {
      # R's [i, j, k] must be NumPy's [i-1, j-1, k-1]: 1-based vs 0-based, same index meaning.
      seen <- reticulate::py_to_r(a$item(reticulate::tuple(i - 1L, j - 1L, k - 1L)))
      if (seen != x[i, j, k]) {
        misplaced[[length(misplaced) + 1]] <- sprintf("R [%d,%d,%d] = %g but NumPy [%d,%d,%d] = %g",
                                                      i, j, k, x[i, j, k], i - 1, j - 1, k - 1, seen)
      }
    }
    back <- reticulate::py_to_r(a)
    round_trip <- identical(dim(back), dim(x)) && all(back == x)
    list(ok = identical(shape, c(2L, 3L, 4L)) && !length(misplaced) && round_trip,
         numpy = reticulate::py_to_r(np$`__version__`), shape = as.list(shape), dtype = reticulate::py_str(a$dtype),
         elements_checked = 24L, misplaced = misplaced, round_trip = round_trip)
  })

  run_section("tensorflow", requires = "python", fn = function() {
    tf <- reticulate::import("tensorflow")
    keras <- reticulate::import("keras")
    # One thread each way, set before TensorFlow's runtime starts (it cannot change afterwards).
    tf$config$threading$set_intra_op_parallelism_threads(1L)
    tf$config$threading$set_inter_op_parallelism_threads(1L)
    tf_keras <- tryCatch(list(version = tf$keras$`__version__`, error = NA),
                         error = function(e) list(version = NA, error = conditionMessage(e)))
    list(tensorflow = tf$`__version__`, keras = keras$`__version__`, backend = keras$backend$backend(),
         tf_keras_version = tf_keras$version, tf_keras_error = tf_keras$error,
         tf_keras_installed = reticulate::py_module_available("tf_keras"),
         env = env_seen(c("TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS")))
  })

  run_section("devices", requires = "tensorflow", fn = function() {
    tf <- reticulate::import("tensorflow")
    devices <- lapply(tf$config$list_physical_devices(), function(d) list(name = d$name, type = d$device_type))
    list(devices = devices)
  })

  run_section("fit", requires = "tensorflow", fn = function() {
    # Twin of fit_smoke() in python_side.py: same data, layers, seeds and settings.
    tf <- reticulate::import("tensorflow")
    keras <- reticulate::import("keras")
    np <- reticulate::import("numpy", convert = FALSE)
    keras$utils$set_random_seed(42L)
    tf$config$experimental$enable_op_determinism()
    dims <- c(8L, 8L, 8L, 1L)
    values <- ((0:(prod(dims) - 1)) %% 17) / 16
    # Filled in NumPy's (row-major) order so that both languages hold the same tensor.
    x <- aperm(array(values, dim = rev(dims)), rev(seq_along(dims)))
    y <- (x > 0.5) * 1
    inputs <- keras$Input(shape = reticulate::tuple(8L, 8L, 1L), name = "input")
    hidden <- keras$layers$Conv2D(filters = 2L, kernel_size = reticulate::tuple(3L, 3L), padding = "same",
                                  activation = "relu",
                                  kernel_initializer = keras$initializers$GlorotUniform(seed = 1L),
                                  bias_initializer = "zeros", name = "conv1")(inputs)
    outputs <- keras$layers$Conv2D(filters = 1L, kernel_size = reticulate::tuple(1L, 1L), activation = "sigmoid",
                                   kernel_initializer = keras$initializers$GlorotUniform(seed = 2L),
                                   bias_initializer = "zeros", name = "output")(hidden)
    model <- keras$Model(inputs, outputs, name = "doctor_smoke")
    model$compile(optimizer = keras$optimizers$Adam(learning_rate = 0.01), loss = "binary_crossentropy")
    history <- model$fit(reticulate::np_array(x, dtype = "float32"), reticulate::np_array(y, dtype = "float32"),
                         batch_size = 4L, epochs = 2L, shuffle = FALSE, verbose = 0L)
    losses <- as.numeric(unlist(history$history$loss))
    arrays <- list()
    for (v in model$weights) arrays[[v$path]] <- np$asarray(v)
    do.call(np$savez, c(list(weights_file), arrays))
    list(ok = length(losses) == 2 && all(is.finite(losses)), losses = as.list(losses),
         weights = weights_file, variables = as.list(names(arrays)))
  })
  invisible(NULL)
})
