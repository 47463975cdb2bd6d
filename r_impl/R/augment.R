# Cropping and augmentation of a training batch, both from the manifest; twin of python_impl/augment.py.
#
# Crops (crop_size > 0): each sample is cut to crop_size x crop_size at the manifest's offsets for its position in
# the epoch (crops: row and column of the top-left pixel); a copy of values, no arithmetic.
# Left-right and up-down flips (each with probability 1/2), then brightness, contrast and saturation jitter
# (ranges: augment_* in [rules] of parity/presets.toml), then clipping to [0, 1]: the same TensorFlow stateless ops
# as Python, called through reticulate with the same int32 seeds, so both languages get the same bits.

#' Augment one sample: image [H, W, C] and mask [H, W, 1] float32 tensors, seed a (2,) int32 tensor; the
#' jitter ranges from `rules`.
augment_sample <- function(image, mask, seed, rules) {
  tf <- py_module("tensorflow")
  seeds <- tf$random$experimental$stateless_split(seed, num = 5L)
  # py_get_item with 0-based Python indices: the seeds are rows of a TensorFlow tensor.
  seed_at <- function(k) reticulate::py_get_item(seeds, k)
  channels <- as.integer(reticulate::py_to_r(image$shape[[-1L]]))
  joined <- tf$concat(list(image, mask), axis = -1L)
  joined <- tf$image$stateless_random_flip_left_right(joined, seed = seed_at(0L))
  joined <- tf$image$stateless_random_flip_up_down(joined, seed = seed_at(1L))
  parts <- tf$split(joined, list(channels, 1L), axis = -1L)
  image <- reticulate::py_get_item(parts, 0L)
  mask <- reticulate::py_get_item(parts, 1L)
  contrast <- rules$augment_contrast
  saturation <- rules$augment_saturation
  image <- tf$image$stateless_random_brightness(image, rules$augment_brightness_max_delta, seed = seed_at(2L))
  image <- tf$image$stateless_random_contrast(image, contrast[1], contrast[2], seed = seed_at(3L))
  if (channels == 3L) {  # saturation needs RGB; greyscale input skips it (the seed is still drawn)
    image <- tf$image$stateless_random_saturation(image, saturation[1], saturation[2], seed = seed_at(4L))
  }
  list(image = tf$clip_by_value(image, 0, 1), mask = mask)
}

#' Augment a batch when config$augment is true; otherwise return it unchanged.
#'
#' `images` [n, H, W, C] and `masks` [n, H, W, 1]: numpy arrays (as load_tiles gives them) or R double arrays;
#' `seeds` an n x 2 integer matrix, the manifest's augment_seeds rows for these samples. Returns
#' list(images, masks) as float32 numpy arrays, like Python.
augment_batch <- function(images, masks, seeds, config) {
  if (!isTRUE(config$augment)) return(list(images = images, masks = masks))
  tf <- py_module("tensorflow")
  np <- py_module("numpy")
  x <- if (inherits(images, "python.builtin.object")) images else to_numpy(images)
  y <- if (inherits(masks, "python.builtin.object")) masks else to_numpy(masks)
  seeds <- matrix(as.integer(seeds), ncol = 2)
  n <- nrow(seeds)
  if (n != as.integer(reticulate::py_to_r(x$shape[[0L]]))) {
    stop(sprintf("augment_batch: %s images but %d seed pairs", reticulate::py_to_r(x$shape[[0L]]), n),
         call. = FALSE)
  }
  rules <- config_rules(config)
  out_images <- vector("list", n)
  out_masks <- vector("list", n)
  for (i in seq_len(n)) {
    # i - 1: Python indices are 0-based.
    seed <- tf$constant(np$array(seeds[i, ], dtype = "int32"))
    sample <- augment_sample(tf$constant(reticulate::py_get_item(x, i - 1L)),
                             tf$constant(reticulate::py_get_item(y, i - 1L)), seed, rules)
    out_images[[i]] <- sample$image
    out_masks[[i]] <- sample$mask
  }
  list(images = tf$stack(out_images)$numpy(), masks = tf$stack(out_masks)$numpy())
}

#' Cut every sample of a batch to `crop_size` x `crop_size` at `offsets` (n x 2 integer matrix): the 0-based row
#' and column of its top-left pixel (the manifest's crops rows of these samples). Returns list(images, masks) as
#' float32 numpy arrays; `crop_size` 0 returns the batch unchanged.
crop_batch <- function(images, masks, offsets, crop_size) {
  crop_size <- as.integer(crop_size)
  if (crop_size == 0L) return(list(images = images, masks = masks))
  np <- py_module("numpy")
  x <- if (inherits(images, "python.builtin.object")) images else to_numpy(images)
  y <- if (inherits(masks, "python.builtin.object")) masks else to_numpy(masks)
  offsets <- matrix(as.integer(offsets), ncol = 2)
  n <- as.integer(reticulate::py_to_r(x$shape[[0L]]))
  size <- as.integer(reticulate::py_to_r(x$shape[[1L]]))
  if (nrow(offsets) != n) {
    stop(sprintf("crop_batch: %d images but %d crop offsets", n, nrow(offsets)), call. = FALSE)
  }
  if (min(c(0L, offsets)) < 0L || max(c(0L, offsets)) + crop_size > size) {
    stop(sprintf("crop_batch: offsets %s with crop %d leave the %d x %d tiles; make the manifest from this config",
                 paste(t(offsets), collapse = ","), crop_size, size, size), call. = FALSE)
  }
  # Python slices with 0-based starts: sample i, rows r:(r + crop), columns c:(c + crop).
  builtins <- py_module("builtins")
  cut <- function(a, i) {
    r <- offsets[i, 1]
    c <- offsets[i, 2]
    reticulate::py_get_item(a, reticulate::tuple(i - 1L, builtins$slice(r, r + crop_size),
                                                 builtins$slice(c, c + crop_size)))
  }
  list(images = np$stack(lapply(seq_len(n), function(i) cut(x, i))),
       masks = np$stack(lapply(seq_len(n), function(i) cut(y, i))))
}
