# The U-Net of the original project, built from the config; twin of python_impl/unet.py.
#
# Two block layouts (config variant), generalised by base_filters and depth:
# - paper-r: Conv2D(f, 3, same, relu, L2) twice per level; Conv2DTranspose(f, 2, strides 2, same, L2, linear);
#   Concatenate([skip, up]). With base 64 and depth 2 this is the R original (10 convolutions of 3 x 3).
# - paper-python: Conv2D(f, 3, same) -> BatchNormalization -> ReLU twice per level; Concatenate([up, skip]).
# batch_norm switches BN on or off in either layout; l2 > 0 puts an L2 penalty on every convolution kernel
# except the output's. Every layer has an explicit name (FORMATS.md) and every initializer the seed
# config seed + index of the layer in build order, so that both languages make the same weights.
# Keras is reached through reticulate: integers as integers (64L), axes 0-based as in Python.

#' Counts layers in build order so that each gets the seed `seed + index` (twin of Python's _Builder).
unet_builder <- function(config) {
  keras <- reticulate::import("keras")
  state <- new.env()
  state$index <- 0L
  next_seed <- function() {
    seed <- as.integer(config$seed) + state$index
    state$index <- state$index + 1L
    seed
  }
  regularizer <- function() {
    l2 <- as.numeric(config$l2)
    if (l2 > 0) keras$regularizers$L2(l2) else NULL
  }
  conv <- function(x, filters, name, activation) {
    seed <- next_seed()
    keras$layers$Conv2D(
      as.integer(filters), as.integer(config$kernel_size), padding = "same", activation = activation,
      kernel_initializer = keras$initializers$GlorotUniform(seed = seed),
      bias_initializer = keras$initializers$Zeros(),
      kernel_regularizer = regularizer(), name = name)(x)
  }
  block <- function(x, filters, prefix) {
    for (k in 1:2) {
      if (isTRUE(config$batch_norm)) {
        x <- conv(x, filters, sprintf("%s_conv%d", prefix, k), NULL)
        next_seed()  # BN has no random initializer; the index still counts the layer
        x <- keras$layers$BatchNormalization(name = sprintf("%s_bn%d", prefix, k))(x)
        next_seed()
        x <- keras$layers$Activation("relu", name = sprintf("%s_relu%d", prefix, k))(x)
      } else {
        x <- conv(x, filters, sprintf("%s_conv%d", prefix, k), "relu")
      }
    }
    x
  }
  list(next_seed = next_seed, regularizer = regularizer, conv = conv, block = block)
}

#' Build the U-Net described by `config` (uncompiled keras.Model named "unet"); the config is checked against
#' [schema] first (check_config of config.R: variant, tile_size a multiple of 2^depth, ...).
build_unet <- function(config) {
  keras <- reticulate::import("keras")
  config <- check_config(config)
  b <- unet_builder(config)
  size <- as.integer(config$tile_size)
  depth <- as.integer(config$depth)
  base <- as.integer(config$base_filters)
  # Trained on crops, validated on whole tiles: the same weights at two sizes, so the side is left open.
  if (as.integer(config$crop_size) > 0L) size <- NULL
  inputs <- keras$Input(shape = reticulate::tuple(size, size, as.integer(config$input_channels)), name = "input")
  x <- inputs
  skips <- list()
  for (level in seq_len(depth)) {
    x <- b$block(x, base * 2L^(level - 1L), sprintf("enc%d", level))
    skips[[level]] <- x
    b$next_seed()
    x <- keras$layers$MaxPooling2D(pool_size = 2L, name = sprintf("enc%d_pool", level))(x)
  }
  x <- b$block(x, base * 2L^depth, "bridge")
  for (level in seq_len(depth)) {
    filters <- base * 2L^(depth - level)
    seed <- b$next_seed()
    up <- keras$layers$Conv2DTranspose(
      as.integer(filters), 2L, strides = 2L, padding = "same", activation = NULL,
      kernel_initializer = keras$initializers$GlorotUniform(seed = seed),
      bias_initializer = keras$initializers$Zeros(),
      kernel_regularizer = b$regularizer(), name = sprintf("dec%d_up", level))(x)
    skip <- skips[[depth - level + 1L]]  # R lists are 1-based
    b$next_seed()
    pair <- if (identical(config$variant, "paper-r")) list(skip, up) else list(up, skip)
    x <- keras$layers$Concatenate(axis = -1L, name = sprintf("dec%d_concat", level))(pair)
    x <- b$block(x, filters, sprintf("dec%d", level))
  }
  seed <- b$next_seed()
  outputs <- keras$layers$Conv2D(
    1L, 1L, padding = "same", activation = "sigmoid",
    kernel_initializer = keras$initializers$GlorotUniform(seed = seed),
    bias_initializer = keras$initializers$Zeros(), name = "output")(x)
  keras$Model(inputs, outputs, name = "unet")
}

#' The optimizer named in the config, with its learning rate (lr_schedule "cosine": Keras's CosineDecay from it
#' to 0 over `steps` training steps) and Keras defaults otherwise.
make_optimizer <- function(config, steps) {
  keras <- reticulate::import("keras")
  lr <- as.numeric(config$learning_rate)
  if (identical(config$lr_schedule, "cosine")) {
    lr <- keras$optimizers$schedules$CosineDecay(lr, decay_steps = as.integer(steps))
  }
  switch(config$optimizer,
         rmsprop = keras$optimizers$RMSprop(learning_rate = lr),
         adam = keras$optimizers$Adam(learning_rate = lr),
         sgd = keras$optimizers$SGD(learning_rate = lr))
}

#' Binary cross-entropy plus 1 - Dice, per sample: mean BCE of the sample's pixels plus
#' 1 - (2 sum(y p) + 1) / (sum(y) + sum(p) + 1). Dice counts the overlap relative to the tailings' area, so about
#' 9% positive pixels cannot be fitted by predicting background everywhere. Keras ops in the order Python writes
#' them (the same graph, the same bits); Keras calls it with tensors, which stay Python objects here.
bce_dice <- function(y_true, y_pred) {
  keras <- reticulate::import("keras", convert = FALSE)
  ops <- keras$ops
  axes <- list(1L, 2L, 3L)
  bce <- ops$mean(keras$losses$binary_crossentropy(y_true, y_pred), axis = list(1L, 2L))
  overlap <- ops$add(ops$multiply(2, ops$sum(ops$multiply(y_true, y_pred), axis = axes)), 1)
  total <- ops$add(ops$add(ops$sum(y_true, axis = axes), ops$sum(y_pred, axis = axes)), 1)
  ops$add(bce, ops$subtract(1, ops$divide(overlap, total)))
}

#' The loss named in the config: Keras's BinaryCrossentropy for "bce", bce_dice for "bce_dice" (a Python
#' function named like Python's, whose arguments reach R unconverted).
make_loss <- function(config) {
  keras <- reticulate::import("keras")
  if (identical(config$loss, "bce")) return(keras$losses$BinaryCrossentropy())
  fn <- reticulate::py_func(bce_dice)
  reticulate::py_set_attr(fn, "__name__", "bce_dice")
  fn
}

#' Load a saved U-Net (model.keras) with this twin's bce_dice for the loss of that name: Keras saves a loss
#' function by name only, so whoever loads the model must say what the name computes. The model comes back
#' unconverted (its predictions stay NumPy arrays).
load_unet <- function(model_path) {
  keras <- reticulate::import("keras", convert = FALSE)
  keras$models$load_model(model_path, custom_objects = reticulate::dict(bce_dice = make_loss(list(loss = "bce_dice"))))
}

#' Compile with the config's optimizer (`steps`: the training steps, for the LR schedule) and `loss` (a model
#' pair's own R loss function) or else the config's; returns the model.
#'
#' No compiled metrics: the metrics are counted from predictions (metrics.R), so train_on_batch and
#' evaluate return the loss alone. jit_compile = FALSE because "auto" lets Keras choose XLA by device, and
#' XLA fuses and reorders float operations outside op determinism: both twins must run the same graph.
compile_model <- function(model, config, steps, loss = NULL) {
  if (!is.null(loss)) {
    # A pair's R loss: a Python function named "loss", as Python's (compiled.json records the name).
    loss <- reticulate::py_func(loss)
    reticulate::py_set_attr(loss, "__name__", "loss")
  }
  model$compile(optimizer = make_optimizer(config, steps), loss = if (is.null(loss)) make_loss(config) else loss,
                jit_compile = FALSE)
  model
}

#' Create the compiled optimizer's slot variables (Adam's moments, RMSprop's velocities) now; returns the model.
#'
#' Keras builds them inside the first train_on_batch (or fit) step, and a tf.function that creates variables is
#' traced twice: once to create them, once more without. Built beforehand, the training step is traced once (the
#' first batch at ci: 4.7-4.9 s -> 1.9-2.0 s). Same zeros, same numbers.
build_optimizer <- function(model) {
  model$optimizer$build(model$trainable_variables)
  model
}

#' Layer list (every operation of the graph, in its topological order) with normalised configs, the wiring (each
#' layer's inputs, in order) and parameter counts (architecture.json).
architecture_record <- function(model) {
  # Names of the layers whose outputs a layer's call takes, in argument order (keras_history of each input
  # tensor in the functional config): Python's _inbound_names, kept local (R has no private functions).
  inbound_names <- function(node) {
    if (!is.list(node)) return(character(0))
    if (!is.null(names(node)) && "keras_history" %in% names(node)) return(node$keras_history[[1]])
    unlist(lapply(node, inbound_names), use.names = FALSE)
  }
  wiring <- list()
  for (cfg in model$get_config()$layers) wiring[[cfg$name]] <- as.character(inbound_names(cfg$inbound_nodes))
  layers <- list()
  # operations: the layers and the keras ops calls of the graph (a pair's ops$mean is a node as a layer is).
  for (layer in model$operations) {
    cfg <- layer$get_config()
    keys <- c("filters", "kernel_size", "strides", "padding", "activation", "pool_size", "axis", "use_bias")
    keep <- cfg[intersect(keys, names(cfg))]
    if (!is.null(cfg$kernel_regularizer)) keep$l2 <- as.numeric(cfg$kernel_regularizer$config$l2)
    if (!is.null(cfg$batch_shape)) keep$batch_shape <- cfg$batch_shape
    # A Python tuple arrives as an R list; a length-1 R vector would go back as a scalar, so keep lists.
    layers[[length(layers) + 1L]] <- list(name = layer$name, class_name = layer$`__class__`$`__name__`,
                                          config = keep, inputs = as.list(wiring[[layer$name]]),
                                          params = if (reticulate::py_has_attr(layer, "count_params"))
                                            as.integer(layer$count_params()) else 0L)
  }
  trainable <- sum(vapply(model$trainable_weights, function(v) as.numeric(length(v$numpy())), numeric(1)))
  list(layers = layers, total_params = as.integer(model$count_params()), trainable_params = as.integer(trainable))
}

#' What compile_model set (compiled.json): the optimizer's and the loss's class and get_config() (without their
#' generated name), and Keras's compile flags.
compiled_record <- function(model) {
  record <- function(obj) {
    # A loss function (bce_dice): its name says what it computes.
    if (!reticulate::py_has_attr(obj, "get_config")) {
      return(list(class_name = "function", config = list(`function` = reticulate::py_get_attr(obj, "__name__", TRUE))))
    }
    cfg <- obj$get_config()
    list(class_name = obj$`__class__`$`__name__`, config = cfg[setdiff(names(cfg), "name")])
  }
  flags <- model$get_compile_config()
  c(list(optimizer = record(model$optimizer), loss = record(model$loss)),
    flags[c("jit_compile", "run_eagerly", "steps_per_execution")])
}
