# The R side of `tailings-parity doctor` (parity/doctor.py runs it; python_side.py is its Python twin).
#
# Run as host:      TP_DOCTOR_MODE=host Rscript probe.R
# Run embedded:     sourced by embedded.py inside a Python process through rpy2 (TP_DOCTOR_MODE=embedded).
# Environment: TP_DOCTOR_OUT (JSON file written after every section, so a crash leaves what was seen and the
# section it died in), TP_DOCTOR_SECTIONS (comma list), TP_DOCTOR_WEIGHTS (.npz of the smoke fit),
# TP_DOCTOR_RETICULATE_EMBEDDED_MIN (older reticulate is not loaded under rpy2: it would kill the process),
# TP_DOCTOR_FORK_TIMEOUT (seconds a forked R child gets to finish a TensorFlow op in the "fork" section).
local({
  mode <- Sys.getenv("TP_DOCTOR_MODE", "host")
  out <- Sys.getenv("TP_DOCTOR_OUT", "doctor-r.json")
  wanted <- strsplit(Sys.getenv("TP_DOCTOR_SECTIONS", paste0("r,packages,reticulate,python,numpy,platform,",
                                                            "tensorflow,keras_config,devices,gpu,fit,fork")), ",")[[1]]
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

  # Shared libraries this process has mapped (/proc/self/maps; Linux only): path per library name.
  mapped_libraries <- function(pattern) {
    if (!file.exists("/proc/self/maps")) return(list())
    paths <- unique(sub("^[^/]*", "", grep("/", readLines("/proc/self/maps"), value = TRUE)))
    paths <- paths[grepl(pattern, basename(paths))]
    as.list(stats::setNames(paths, basename(paths)))
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
    # Started before this line (an .Rprofile, a site profile): a later use_python() would be ignored.
    started_before <- isTRUE(reticulate::py_available(initialize = FALSE))
    library(reticulate)
    cfg <- reticulate::py_config()
    # py_require() with no arguments lists what was declared (reticulate >= 1.41); nothing is installed by it.
    declared <- tryCatch(as.character(unlist(reticulate::py_require()$packages)), error = function(e) character())
    sys <- reticulate::import("sys")
    os <- reticulate::import("os")
    sysconfig <- reticulate::import("sysconfig")
    list(reticulate = version, executable = sys$executable, prefix = sys$prefix,
         version = sys$version, config_python = cfg$python, libpython = cfg$libpython,
         forced = if (is.null(cfg$forced)) NA else cfg$forced,
         ephemeral = isTRUE(cfg$ephemeral), architecture = cfg$architecture,
         numpy_path = if (is.null(cfg$numpy$path)) NA else cfg$numpy$path,
         started_before_probe = started_before, declared_requirements = as.list(declared),
         # reticulate's own library is C++: the libstdc++ R loaded for it is the one Python's modules get.
         libstdcxx = mapped_libraries("^libstdc\\+\\+"),
         shared = sysconfig$get_config_var("Py_ENABLE_SHARED"),
         python_pid = os$getpid(), r_pid = Sys.getpid(),
         env = env_seen(c("RETICULATE_PYTHON", "RETICULATE_PYTHON_ENV", "VIRTUAL_ENV", "CONDA_PREFIX",
                          "PYTHONHOME", "PYTHONPATH", "TENSORFLOW_PYTHON", "KERAS_PYTHON",
                          "RETICULATE_PYTHON_FALLBACK", "RETICULATE_USE_MANAGED_VENV")),
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

  run_section("platform", requires = "python", fn = function() {
    # Twin of platform_section() in python_side.py, read through reticulate from the Python R uses.
    sys <- reticulate::import("sys")
    site <- reticulate::import("site")
    np <- reticulate::import("numpy")
    on_path <- Filter(function(p) nzchar(p) && file.exists(file.path(p, "numpy", "__init__.py")), sys$path)
    flags <- if (file.exists("/proc/cpuinfo")) {
      words <- strsplit(sub("^[^:]*:", "", grep("^flags", readLines("/proc/cpuinfo"), value = TRUE)[1]), " ")[[1]]
      as.list(intersect(c("sse4_2", "avx", "avx2", "fma", "avx512f"), words))
    } else NA
    list(r_arch = R.version$arch, python_machine = reticulate::import("platform")$machine(),
         pointer_bits = 8L * as.integer(.Machine$sizeof.pointer), cpu_flags = flags,
         numpy_file = np$`__file__`, numpy_version = np$`__version__`, numpy_on_path = as.list(on_path),
         prefix = sys$prefix, base_prefix = sys$base_prefix,
         user_site = site$getusersitepackages(), user_site_enabled = isTRUE(site$ENABLE_USER_SITE),
         pythonpath = Sys.getenv("PYTHONPATH"))
  })

  run_section("tensorflow", requires = "python", fn = function() {
    tf <- reticulate::import("tensorflow")
    keras <- reticulate::import("keras")
    # One thread each way unless TensorFlow's own variables say otherwise (twin of python_side.py), set before
    # TensorFlow's runtime starts (it cannot change afterwards).
    tf$config$threading$set_intra_op_parallelism_threads(as.integer(Sys.getenv("TF_NUM_INTRAOP_THREADS", "1")))
    tf$config$threading$set_inter_op_parallelism_threads(as.integer(Sys.getenv("TF_NUM_INTEROP_THREADS", "1")))
    tf_keras <- tryCatch(list(version = tf$keras$`__version__`, error = NA),
                         error = function(e) list(version = NA, error = conditionMessage(e)))
    list(tensorflow = tf$`__version__`, keras = keras$`__version__`, backend = keras$backend$backend(),
         tf_keras_version = tf_keras$version, tf_keras_error = tf_keras$error,
         tf_keras_installed = reticulate::py_module_available("tf_keras"),
         env = env_seen(c("TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS")))
  })

  run_section("keras_config", requires = "python", fn = function() {
    # Twin of keras_config_section(): what Keras computes with, and which keras.json it read.
    keras <- reticulate::import("keras")
    home <- reticulate::import("keras.src.backend.config")$keras_home()
    py_environ <- reticulate::import("os")$environ
    keras_vars <- c("KERAS_HOME", "KERAS_BACKEND", "TF_USE_LEGACY_KERAS")
    # keras3's .onLoad points KERAS_HOME at R's user cache when ~/.keras is absent (its R/package.R).
    keras3_home <- if (!nzchar(Sys.getenv("KERAS_HOME")) && !dir.exists(path.expand("~/.keras")))
      tools::R_user_dir("keras3", "cache") else NA
    list(backend = keras$config$backend(), floatx = keras$config$floatx(), epsilon = keras$config$epsilon(),
         image_data_format = keras$config$image_data_format(), keras_home = home,
         keras_json = file.path(home, "keras.json"), keras_json_exists = file.exists(file.path(home, "keras.json")),
         keras3_would_set_home = keras3_home,
         # What Keras reads is Python's os.environ; embedded, it was copied before R read its .Renviron.
         env = Filter(Negate(is.null), lapply(stats::setNames(nm = keras_vars), function(n) py_environ$get(n))),
         r_env = env_seen(keras_vars))
  })

  run_section("devices", requires = "tensorflow", fn = function() {
    tf <- reticulate::import("tensorflow")
    devices <- lapply(tf$config$list_physical_devices(), function(d) list(name = d$name, type = d$device_type))
    list(devices = devices)
  })

  run_section("gpu", requires = c("python", "tensorflow"), fn = function() {
    # Twin of gpu_section(): the CUDA build, the CUDA libraries loaded, and what XLA needs to find.
    tf <- reticulate::import("tensorflow")
    build <- reticulate::py_to_r(reticulate::import("builtins")$dict(tf$sysconfig$get_build_info()))
    gpus <- tf$config$list_physical_devices("GPU")
    growth <- lapply(gpus, function(g) tryCatch(tf$config$experimental$get_memory_growth(g),
                                                 error = function(e) NA))
    list(build = build, gpus = length(gpus), memory_growth = growth,
         cuda_libraries = mapped_libraries("^lib(cuda|cudart|cudnn|cublas|cufft|cusolver|cusparse|nvrtc|nvJitLink)"),
         libstdcxx = mapped_libraries("^libstdc\\+\\+"), ptxas = unname(Sys.which("ptxas")),
         env = env_seen(c("LD_LIBRARY_PATH", "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH", "CUDA_VISIBLE_DEVICES")))
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

  run_section("fork", requires = c("python", "tensorflow"), fn = function() {
    # parallel::mclapply and friends fork R; TensorFlow's thread pools do not survive a fork. A forked child
    # runs one TensorFlow op here and gets TP_DOCTOR_FORK_TIMEOUT seconds; a child that hangs is killed.
    tf <- reticulate::import("tensorflow")
    limit <- as.numeric(Sys.getenv("TP_DOCTOR_FORK_TIMEOUT", "5"))
    # Large enough for TensorFlow to split it over its thread pool (a 64x64 one runs on the calling thread).
    op <- function(tf) as.numeric(tf$reduce_sum(tf$matmul(tf$ones(c(300L, 300L)), tf$ones(c(300L, 300L))))$numpy())
    expected <- op(tf)  # the parent's runtime (and its thread pools) start here, before the fork
    started <- Sys.time()
    job <- parallel::mcparallel(op(reticulate::import("tensorflow")), silent = TRUE)
    got <- parallel::mccollect(job, wait = FALSE, timeout = limit)
    seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
    if (is.null(got)) {
      tools::pskill(job$pid, tools::SIGKILL)
      parallel::mccollect(job, wait = TRUE)
    }
    value <- if (is.null(got)) NA else got[[1]]
    outcome <- if (is.null(got)) "hung" else if (inherits(value, "try-error")) "error" else
      if (isTRUE(all.equal(value, expected))) "completed" else "wrong"
    list(ok = outcome == "completed", outcome = outcome, seconds = seconds, limit = limit,
         child_error = if (inherits(value, "try-error")) as.character(value) else NA,
         intra_op_threads = tf$config$threading$get_intra_op_parallelism_threads(),
         inter_op_threads = tf$config$threading$get_inter_op_parallelism_threads())
  })
  invisible(NULL)
})
