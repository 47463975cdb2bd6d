# Training protocol of both twins; twin of python_impl/train.py.
#
# Seeds through keras$utils$set_random_seed, op determinism, thread counts from the config, batches in the
# order that the manifest lists (no framework shuffling), one training step per manifest batch (what
# train_on_batch runs, traced once: make_train_step). Metrics, lean:
# after every epoch one forward pass over the validation tiles (loss from those predictions with the compiled
# loss, metrics counted in R); the training split's loss per epoch is the mean of the epoch's batch losses; the
# training split's counted metrics once, at the end (evaluation phase). Everything goes to out_dir in the
# formats of FORMATS.md.
# R arrays go to Keras through to_numpy() (float32, never R doubles), once, at the start of train() (load_tiles
# already gives float32 NumPy arrays).

#' The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (v2 cpu.max or v1
#' cpu.cfs_quota_us), rounded up; at least 1. The affinity comes from Python's os.sched_getaffinity through
#' reticulate (base R has no call for it: parallel::detectCores ignores affinity); the cgroup files as Python's.
available_cores <- function() {
  os <- reticulate::import("os")
  cores <- if (reticulate::py_has_attr(os, "sched_getaffinity")) length(os$sched_getaffinity(0L)) else os$cpu_count()
  files <- list(c("/sys/fs/cgroup/cpu.max", NA), c("/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                                                   "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
  for (f in files) {
    fields <- tryCatch(strsplit(readLines(f[1], warn = FALSE)[1], " +")[[1]], error = function(e) NULL,
                       warning = function(w) NULL)
    if (is.null(fields) || length(fields) == 0L) next
    period <- if (is.na(f[2])) fields[2] else tryCatch(readLines(f[2], warn = FALSE)[1], error = function(e) NA)
    if (is.na(period)) next
    if (!fields[1] %in% c("max", "-1")) cores <- min(cores, ceiling(as.numeric(fields[1]) / as.numeric(period)))
    break
  }
  max(1L, as.integer(cores))
}

#' threads_intra and threads_inter as numbers: "auto" is available_cores().
resolve_threads <- function(config) {
  one <- function(value) if (identical(as.character(value), "auto")) available_cores() else as.integer(value)
  list(threads_intra = one(config$threads_intra), threads_inter = one(config$threads_inter))
}

#' Seed, thread counts and op determinism from `config`; must run before TensorFlow runs any op.
#'
#' Returns what was set, for environment.json.
set_determinism <- function(config) {
  tf <- reticulate::import("tensorflow")
  keras <- reticulate::import("keras")
  threads <- resolve_threads(config)
  # Thread pools are created by the first op; setting them later raises RuntimeError.
  tf$config$threading$set_intra_op_parallelism_threads(threads$threads_intra)
  tf$config$threading$set_inter_op_parallelism_threads(threads$threads_inter)
  keras$utils$set_random_seed(as.integer(config$seed))  # an R double would be rejected: Python wants an int
  if (isTRUE(config$deterministic)) tf$config$experimental$enable_op_determinism()
  c(list(seed = as.integer(config$seed)), threads,
    list(threads_setting = c(as.character(config$threads_intra), as.character(config$threads_inter)),
         available_cores = available_cores(), op_determinism = isTRUE(config$deterministic)))
}

#' Seed Python's, NumPy's and TensorFlow's generators from the config (keras$utils$set_random_seed) and R's own
#' (set.seed), before the model is built: Python's twin seeds the same generators.
seed_everything <- function(config) {
  set.seed(as.integer(config$seed))
  reticulate::import("keras")$utils$set_random_seed(as.integer(config$seed))
  invisible(config)
}

#' Augmentation seeds (int32 pairs) of the train `positions` (0-based) of one batch in `epoch` (0-based):
#' rows `positions` of the manifest's augment_seeds[epoch].
batch_seeds <- function(manifest, epoch, positions) {
  manifest$augment_seeds[[epoch + 1L]][positions + 1L, , drop = FALSE]  # R indices are 1-based
}

#' Crop offsets (row, column) of the train `positions` (0-based) of one batch in `epoch` (0-based): rows
#' `positions` of the manifest's crops[epoch].
batch_crops <- function(manifest, epoch, positions) {
  manifest$crops[[epoch + 1L]][positions + 1L, , drop = FALSE]
}

#' Training steps (batches) of the first `epochs` epochs of the manifest: the length of the LR schedule.
total_steps <- function(manifest, epochs) {
  sum(vapply(manifest$batches[seq_len(epochs)], length, integer(1)))
}

#' Mean of batch losses, summed left to right in double (Python's loop: R's sum() accumulates in long double
#' and numpy's in pairs, which could differ in the last bit).
mean_loss <- function(losses) {
  total <- 0
  for (value in losses) total <- total + value
  total / length(losses)
}

#' `predict_tiles(x, batch_size)`: the model's probabilities (R array [n, row, col, 1] of exact float32 values) for
#' the tiles `x` (float32 NumPy, n first), `batch_size` at a time, as model$predict gives them; `x` here: tiles of
#' the size it will see.
#'
#' Keras's predict_step as one tf.function: model$predict builds a tf.data pipeline at every call (0.25-0.35 s
#' for the 20 validation tiles at ci, against 0.13 s), and predict_on_batch traces a second graph. Same graph,
#' same numbers (jit_compile = FALSE, as training: where Keras's "auto" would pick XLA, on a GPU without op
#' determinism, model$predict could differ).
make_predict <- function(model, x) {
  tf <- py_module("tensorflow")
  spec <- tf$TensorSpec(reticulate::tuple(c(list(NULL), reticulate::py_to_r(x$shape)[-1])), tf$float32)
  step <- tf$`function`(reticulate::py_get_attr(model, "predict_step"), input_signature = list(spec),
                        jit_compile = FALSE, autograph = FALSE)
  slice <- py_attr("builtins", "slice")
  function(x, batch_size) {
    # At least one tile: the config's rules give every split one (an empty batch fails in TensorFlow's conv).
    starts <- seq(0L, reticulate::py_len(x) - 1L, by = batch_size)
    parts <- lapply(as.integer(starts), function(k) {
      step(reticulate::py_get_item(x, slice(k, k + as.integer(batch_size))))$numpy()
    })
    reticulate::py_to_r(py_attr("numpy", "concatenate")(parts))
  }
}

#' Loss and counted metrics of one split from its predictions (make_predict) with the current weights.
#'
#' The loss is the compiled loss (binary cross-entropy plus the L2 terms) of all the split's predictions at
#' once, model$compute_loss: what evaluate returns for one batch, without a second forward pass.
#' `probabilities` is the R array [n, row, col, 1] that make_predict returns (exact float32 values);
#' `masks` the split's float32 numpy array.
split_metrics <- function(model, probabilities, masks, config) {
  # to_numpy: the predictions go back as the float32 they were, so the loss is computed on Python's bits.
  loss <- model$compute_loss(y = masks, y_pred = to_numpy(probabilities), training = FALSE)
  # Counted in R on R values: the masks come back as an R array (exact 0/1).
  c(list(loss = as.numeric(reticulate::py_to_r(loss$numpy()))),
    segmentation_metrics(confusion_counts(probabilities, reticulate::py_to_r(masks),
                                          config_rules(config)$class_threshold)))
}

#' Rows `positions` (0-based, as the manifest lists them) of a numpy array [n, ...]: Python's x[positions].
take_rows <- function(x, positions) {
  # array(): a length-1 R vector would become a Python scalar, and x[scalar] drops the batch axis.
  reticulate::py_get_item(x, py_attr("numpy", "asarray")(array(as.integer(positions)), dtype = "int64"))
}

#' `train_batch(x, y)`: one optimizer step of `model` on one batch, returning the batch's loss; `x` and `y` (NumPy) are
#' a first batch, for the shape of a sample.
#'
#' What train_on_batch runs (Keras's train_step, metrics reset before it so that the loss returned is this
#' batch's), as one tf.function over batches of any size: train_on_batch traces the step for the first batch's
#' size and again for a last, smaller batch (2 s at ci, as long as the first trace). Same graph, same numbers.
#' jit_compile = FALSE as in compile_model; autograph = FALSE as Keras's own wrapper (do_not_convert).
make_train_step <- function(model, x, y) {
  tf <- py_module("tensorflow")
  spec <- function(a) {
    tf$TensorSpec(reticulate::tuple(c(list(NULL), reticulate::py_to_r(a$shape)[-1])), tf$float32)
  }
  # py_get_attr: the bound method as a Python object (`$` would wrap it in an R function).
  step <- tf$`function`(reticulate::py_get_attr(model, "train_step"),
                        input_signature = list(reticulate::tuple(spec(x), spec(y))), jit_compile = FALSE,
                        autograph = FALSE)
  float <- py_attr("builtins", "float")
  function(x, y) {
    model$reset_metrics()
    reticulate::py_to_r(float(reticulate::py_get_item(step(reticulate::tuple(x, y)), "loss")))
  }
}

#' Build the config's model pair, train and evaluate it; write the worker artifacts to `out_dir`; return the timings.
#'
#' `data` is list(train = list(images, masks), val = list(images, masks)) in manifest order: float32 NumPy
#' arrays (as load_tiles() reads them) or R double arrays [n, row, col, C].
train <- function(config, manifest, data, out_dir) {
  now <- function() as.numeric(Sys.time())
  timings <- list()
  started <- now()
  # Converted once, here (a no-op for NumPy arrays): converting R doubles per batch and per epoch made R's
  # training ~20% slower.
  t <- now()
  train_x <- to_numpy(data$train$images)
  train_y <- to_numpy(data$train$masks)
  val_x <- to_numpy(data$val$images)
  val_y <- to_numpy(data$val$masks)
  timings$handover <- now() - t

  log_progress(out_dir, "phase build")
  t <- now()
  pair <- load_pair(config)
  seed_everything(config)  # the pair's default initializers draw from these seeds, in both languages
  model <- build_pair_model(pair, config)
  save_json(architecture_record(model), file.path(out_dir, "architecture.json"))
  save_weights_npz(model, file.path(out_dir, "weights_initial.npz"))
  fixed <- manifest$fixed_batch  # 0-based positions, numpy indexes them as they are
  predict_tiles <- make_predict(model, val_x)
  # forward_fixed: the fixed batch as one batch; forward_layers: every layer's output on it.
  fixed_x <- take_rows(val_x, fixed)
  forward <- predict_tiles(fixed_x, length(fixed))
  check_probabilities(forward, reticulate::py_to_r(fixed_x$shape), file.path(pair$folder, "model.R"))
  save_array(forward, file.path(out_dir, "forward_fixed.npy"))
  save_layer_outputs(model, fixed_x, config, out_dir)
  epochs <- as.integer(config$epochs)
  if (length(manifest$batches) < epochs) {
    stop(sprintf("manifest lists batches for %d epochs, config wants %d: make the manifest from this config",
                 length(manifest$batches), epochs), call. = FALSE)
  }
  crop_size <- as.integer(config$crop_size)
  if (manifest$crop_size != crop_size) {
    stop(sprintf("manifest crop_size %d, config crop_size %d: make the manifest from this config",
                 manifest$crop_size, crop_size), call. = FALSE)
  }
  compile_model(model, config, total_steps(manifest, epochs), pair$loss)
  build_optimizer(model)  # the training step then traces once (build_optimizer in unet.R)
  # compiled.json: the optimizer and loss this very model trains with, for the architecture stage.
  save_json(compiled_record(model), file.path(out_dir, "compiled.json"))
  timings$build <- now() - t

  n_batches <- max(c(0L, vapply(manifest$batches[seq_len(epochs)], length, integer(1))))
  losses <- matrix(NaN, nrow = epochs, ncol = n_batches)
  history <- list()
  epoch_times <- numeric(0)
  metric_times <- numeric(0)
  batch_size <- as.integer(config$batch_size)
  # batch_order.json: the tile ids fed, batch by batch, and a digest of every sample as fed (after crop and
  # augmentation), for the harness's batch-order check
  fed <- list()
  samples <- list()
  train_batch <- NULL  # make_train_step, at the first batch
  log_progress(out_dir, "phase train")
  for (epoch in seq_len(epochs) - 1L) {  # 0-based like the manifest and Python
    t <- now()
    batches <- manifest$batches[[epoch + 1L]]
    fed[[epoch + 1L]] <- list()
    samples[[epoch + 1L]] <- list()
    for (b in seq_along(batches)) {
      positions <- batches[[b]]
      fed[[epoch + 1L]][[b]] <- as.list(manifest$train[positions + 1L])  # a list: one tile stays an array
      x <- take_rows(train_x, positions)
      y <- take_rows(train_y, positions)
      if (crop_size > 0L) {
        cropped <- crop_batch(x, y, batch_crops(manifest, epoch, positions), crop_size)
        x <- cropped$images
        y <- cropped$masks
      }
      if (isTRUE(config$augment)) {
        augmented <- augment_batch(x, y, batch_seeds(manifest, epoch, positions), config)
        x <- augmented$images
        y <- augmented$masks
      }
      samples[[epoch + 1L]][[b]] <- fed_digests(x, y)
      if (is.null(train_batch)) train_batch <- make_train_step(model, x, y)
      losses[epoch + 1L, b] <- train_batch(x, y)
      log_progress(out_dir, sprintf("epoch %d/%d batch %d/%d loss %.4f elapsed %.1fs", epoch + 1L, epochs, b,
                                    length(batches), losses[epoch + 1L, b], now() - started))
    }
    epoch_times <- c(epoch_times, now() - t)
    t <- now()
    # The epoch's one forward pass, over the validation tiles; after the last epoch it is the final one.
    val_probabilities <- predict_tiles(val_x, batch_size)
    history[[epoch + 1L]] <- list(epoch = epoch + 1L,
                                  train = list(loss = mean_loss(losses[epoch + 1L, seq_along(batches)])),
                                  val = split_metrics(model, val_probabilities, val_y, config))
    metric_times <- c(metric_times, now() - t)
    v <- history[[epoch + 1L]]$val
    log_progress(out_dir, sprintf("epoch %d/%d done val_loss %.4f val_iou %s elapsed %.1fs", epoch + 1L, epochs,
                                  v$loss, if (is.null(v$iou)) "None" else sprintf("%.4f", v$iou),
                                  now() - started))
  }
  timings$epochs <- as.list(epoch_times)  # a list, so that one epoch still writes a JSON array
  timings$epoch_metrics <- as.list(metric_times)
  save_array(losses, file.path(out_dir, "batch_losses.npy"))
  save_json(list(manifest_sha256 = manifest$manifest_sha256, batches = fed, samples = samples),
            file.path(out_dir, "batch_order.json"))

  log_progress(out_dir, "phase evaluation")
  t <- now()
  save_array(array(val_probabilities, dim = dim(val_probabilities)[1:3]), file.path(out_dir, "predictions_val.npy"))
  # The training split's counted metrics, once, with the final weights.
  train_probabilities <- predict_tiles(train_x, batch_size)
  final <- list(train = split_metrics(model, train_probabilities, train_y, config), val = history[[epochs]]$val)
  save_json(list(epochs = history, final = final), file.path(out_dir, "metrics.json"))
  timings$evaluation <- now() - t

  log_progress(out_dir, "phase save")
  t <- now()
  save_weights_npz(model, file.path(out_dir, "weights_final.npz"))
  model$save(file.path(out_dir, "model.keras"))
  timings$save <- now() - t
  timings
}
