# The model pair: a folder whose model.py and model.R each define build_model(config); twin of
# python_impl/pair.py.
#
# build_model returns an uncompiled Keras model from tiles (N, H, W, C) to probabilities (N, H, W, 1). An optional
# loss(y_true, y_pred), defined in both files, is the compiled loss (else the config's loss); an optional
# model.toml adds the pair's own config keys (model_toml in config.R). The harness checks the folder before
# anything runs; what only Keras can tell stops the worker at build, naming the file and the fix.

#' Source the model.R of the config's pair into its own environment (whose parent is the global one, where the
#' twin's functions are) and return list(folder, build_model, loss); loss is NULL when the pair has none.
load_pair <- function(config) {
  folder <- model_dir(config$model)
  path <- file.path(folder, "model.R")
  env <- new.env(parent = globalenv())
  tryCatch(source(path, local = env), error = function(e) {
    stop(sprintf("%s: sourcing it raised: %s", path, conditionMessage(e)), call. = FALSE)
  })
  build <- get0("build_model", envir = env, inherits = FALSE)
  if (!is.function(build)) stop(sprintf("%s: defines no function build_model(config)", path), call. = FALSE)
  loss <- get0("loss", envir = env, inherits = FALSE)
  list(folder = folder, build_model = build, loss = if (is.function(loss)) loss else NULL)
}

#' pair$build_model(config), checked: a Keras Model with one 4-d input and one output (N, H, W, 1).
build_pair_model <- function(pair, config) {
  keras <- reticulate::import("keras")
  path <- file.path(pair$folder, "model.R")
  model <- tryCatch(pair$build_model(config), error = function(e) {
    stop(sprintf("%s: build_model raised: %s", path, conditionMessage(e)), call. = FALSE)
  })
  if (!inherits(model, "python.builtin.object") || !is_instance(model, keras$Model)) {
    stop(sprintf("%s: build_model returned a %s, not a Keras Model; return keras$Model(inputs, outputs), uncompiled",
                 path, class(model)[1]), call. = FALSE)
  }
  check_shapes(model, path)
  model
}

#' One input (N, H, W, C) and one output (N, H, W, 1): what the harness feeds and scores.
check_shapes <- function(model, where) {
  shape_of <- function(t) {
    dims <- vapply(reticulate::py_to_r(reticulate::py_get_attr(t, "shape", TRUE)),
                   function(d) if (is.null(d)) "None" else as.character(d), "")
    sprintf("(%s)", paste(dims, collapse = ", "))
  }
  shapes <- function(ts) paste(vapply(ts, shape_of, ""), collapse = ", ")
  inputs <- model$inputs
  if (length(inputs) != 1L || length(inputs[[1]]$shape) != 4L) {
    stop(sprintf("%s: the model's inputs are [%s]; it must take one input of tiles (N, H, W, C)", where,
                 shapes(inputs)), call. = FALSE)
  }
  outputs <- model$outputs
  last <- if (length(outputs) == 1L) outputs[[1]]$shape[[length(outputs[[1]]$shape)]] else NULL
  if (length(outputs) != 1L || length(outputs[[1]]$shape) != 4L || !identical(as.integer(last), 1L)) {
    stop(sprintf(paste0("%s: the model's outputs are [%s]; it must give one output (N, H, W, 1) of tailings ",
                        "probabilities (end with Conv2D(1L, 1L, activation = \"sigmoid\"))"), where,
                 shapes(outputs)), call. = FALSE)
  }
  invisible(model)
}

#' The output on the fixed batch (an R array [n, row, col, 1]): the tiles' (N, H, W) and 1 channel, finite,
#' in [0, 1].
check_probabilities <- function(probabilities, tiles_shape, where) {
  want <- c(as.integer(unlist(tiles_shape))[1:3], 1L)
  got <- dim(probabilities)
  if (!identical(as.integer(got), want)) {
    stop(sprintf(paste0("%s: the model maps tiles (%s) to (%s); it must give (%s), the tiles' height and width ",
                        "(use padding = \"same\")"), where, paste(unlist(tiles_shape), collapse = ", "),
                 paste(got, collapse = ", "), paste(want, collapse = ", ")), call. = FALSE)
  }
  bad <- sum(!is.finite(probabilities))
  if (bad > 0L || min(probabilities, na.rm = TRUE) < 0 || max(probabilities, na.rm = TRUE) > 1) {
    stop(sprintf(paste0("%s: the model's output on the fixed batch is not a probability (min %.4g, max %.4g, %d ",
                        "not finite); end the model with a sigmoid"), where, min(probabilities, na.rm = TRUE),
                 max(probabilities, na.rm = TRUE), bad), call. = FALSE)
  }
  invisible(probabilities)
}

#' A saved model.keras of the config's pair, uncompiled (what predicting needs), NumPy out (convert = FALSE):
#' the pair's model.R is sourced first, so that custom objects it registers with Keras are known.
load_saved <- function(model_path, config) {
  load_pair(config)
  py_module("keras")$models$load_model(model_path, compile = FALSE)
}
