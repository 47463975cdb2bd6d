# Training protocol of both twins; twin of python_impl/train.py.
#
# Seeds through keras$utils$set_random_seed, op determinism, fixed thread counts, batches in the order that
# the manifest lists (no framework shuffling), one train_on_batch per manifest batch, metrics counted in R from
# predictions after every epoch. Everything goes to out_dir in the formats of FORMATS.md.
# The R reader's arrays go to Keras through to_numpy() (float32, never R doubles), once, at the start of train().

#' Seed, thread counts and op determinism from `config`; must run before TensorFlow runs any op.
#'
#' Returns what was set, for environment.json.
set_determinism <- function(config) {
  tf <- reticulate::import("tensorflow")
  keras <- reticulate::import("keras")
  # Thread pools are created by the first op; setting them later raises RuntimeError.
  tf$config$threading$set_intra_op_parallelism_threads(as.integer(config$threads_intra))
  tf$config$threading$set_inter_op_parallelism_threads(as.integer(config$threads_inter))
  keras$utils$set_random_seed(as.integer(config$seed))  # an R double would be rejected: Python wants an int
  if (isTRUE(config$deterministic)) tf$config$experimental$enable_op_determinism()
  list(seed = as.integer(config$seed), threads_intra = as.integer(config$threads_intra),
       threads_inter = as.integer(config$threads_inter), op_determinism = isTRUE(config$deterministic))
}

#' Augmentation seeds (int32 pairs) of the train `positions` (0-based) of one batch in `epoch` (0-based):
#' rows `positions` of the manifest's augment_seeds[epoch].
batch_seeds <- function(manifest, epoch, positions) {
  manifest$augment_seeds[[epoch + 1L]][positions + 1L, , drop = FALSE]  # R indices are 1-based
}

#' Loss (model$evaluate) and counted metrics (model$predict, counted in R) of one split with the current weights.
#'
#' `images` and `masks` are the split's float32 numpy arrays (train() converts them once).
split_metrics <- function(model, images, masks, config) {
  batch_size <- as.integer(config$batch_size)
  loss <- model$evaluate(images, masks, batch_size = batch_size, verbose = 0L)
  probabilities <- model$predict(images, batch_size = batch_size, verbose = 0L)  # an R array [n, row, col, 1]
  # Counted in R on R values: the masks come back as an R array (exact 0/1), once per split like the predictions.
  c(list(loss = as.numeric(loss)),
    segmentation_metrics(confusion_counts(probabilities, reticulate::py_to_r(masks),
                                          config_rules(config)$class_threshold)))
}

#' Rows `positions` (0-based, as the manifest lists them) of a numpy array [n, ...]: Python's x[positions].
take_rows <- function(x, positions) {
  np <- reticulate::import("numpy", convert = FALSE)
  # array(): a length-1 R vector would become a Python scalar, and x[scalar] drops the batch axis.
  reticulate::py_get_item(x, np$asarray(array(as.integer(positions)), dtype = "int64"))
}

#' Build, train and evaluate the U-Net; write the worker artifacts to `out_dir`; return the timings.
#'
#' `data` is list(train = list(images, masks), val = list(images, masks)) of R arrays [n, row, col, C] in
#' manifest order, as load_tiles() read them.
train <- function(config, manifest, data, out_dir) {
  now <- function() as.numeric(Sys.time())
  timings <- list()
  started <- now()
  # Converted once, here: converting the R doubles per batch and per epoch made R's training ~20% slower.
  t <- now()
  train_x <- to_numpy(data$train$images)
  train_y <- to_numpy(data$train$masks)
  val_x <- to_numpy(data$val$images)
  val_y <- to_numpy(data$val$masks)
  timings$handover <- now() - t

  log_progress(out_dir, "phase build")
  t <- now()
  model <- build_unet(config)
  save_json(architecture_record(model), file.path(out_dir, "architecture.json"))
  save_weights_npz(model, file.path(out_dir, "weights_initial.npz"))
  fixed <- manifest$fixed_batch  # 0-based positions, numpy indexes them as they are
  save_array(model$predict_on_batch(take_rows(val_x, fixed)), file.path(out_dir, "forward_fixed.npy"))
  compile_unet(model, config)
  timings$build <- now() - t

  epochs <- as.integer(config$epochs)
  if (length(manifest$batches) < epochs) {
    stop(sprintf("manifest lists batches for %d epochs, config wants %d: make the manifest from this config",
                 length(manifest$batches), epochs), call. = FALSE)
  }
  n_batches <- max(c(0L, vapply(manifest$batches[seq_len(epochs)], length, integer(1))))
  losses <- matrix(NaN, nrow = epochs, ncol = n_batches)
  history <- list()
  epoch_times <- numeric(0)
  metric_times <- numeric(0)
  fed <- list()  # batch_order.json: the tile ids fed, batch by batch, for the harness's batch-order check
  log_progress(out_dir, "phase train")
  for (epoch in seq_len(epochs) - 1L) {  # 0-based like the manifest and Python
    t <- now()
    batches <- manifest$batches[[epoch + 1L]]
    fed[[epoch + 1L]] <- list()
    for (b in seq_along(batches)) {
      positions <- batches[[b]]
      fed[[epoch + 1L]][[b]] <- as.list(manifest$train[positions + 1L])  # a list: one tile stays an array
      x <- take_rows(train_x, positions)
      y <- take_rows(train_y, positions)
      if (isTRUE(config$augment)) {
        augmented <- augment_batch(x, y, batch_seeds(manifest, epoch, positions), config)
        x <- augmented$images
        y <- augmented$masks
      }
      # train_on_batch resets the metrics before the step, so the loss it returns is this batch's.
      losses[epoch + 1L, b] <- model$train_on_batch(x, y)
      log_progress(out_dir, sprintf("epoch %d/%d batch %d/%d loss %.4f elapsed %.1fs", epoch + 1L, epochs, b,
                                    length(batches), losses[epoch + 1L, b], now() - started))
    }
    epoch_times <- c(epoch_times, now() - t)
    t <- now()
    history[[epoch + 1L]] <- list(epoch = epoch + 1L,
                                  train = split_metrics(model, train_x, train_y, config),
                                  val = split_metrics(model, val_x, val_y, config))
    metric_times <- c(metric_times, now() - t)
    v <- history[[epoch + 1L]]$val
    log_progress(out_dir, sprintf("epoch %d/%d done val_loss %.4f val_iou %s elapsed %.1fs", epoch + 1L, epochs,
                                  v$loss, if (is.null(v$iou)) "None" else sprintf("%.4f", v$iou),
                                  now() - started))
  }
  timings$epochs <- as.list(epoch_times)  # a list, so that one epoch still writes a JSON array
  timings$epoch_metrics <- as.list(metric_times)
  save_array(losses, file.path(out_dir, "batch_losses.npy"))
  save_json(list(manifest_sha256 = manifest$manifest_sha256, batches = fed), file.path(out_dir, "batch_order.json"))
  save_json(list(epochs = history), file.path(out_dir, "metrics.json"))

  log_progress(out_dir, "phase evaluation")
  t <- now()
  probabilities <- model$predict(val_x, batch_size = as.integer(config$batch_size), verbose = 0L)
  save_array(array(probabilities, dim = dim(probabilities)[1:3]), file.path(out_dir, "predictions_val.npy"))
  timings$evaluation <- now() - t

  log_progress(out_dir, "phase save")
  t <- now()
  save_weights_npz(model, file.path(out_dir, "weights_final.npz"))
  model$save(file.path(out_dir, "model.keras"))
  timings$save <- now() - t
  timings
}
