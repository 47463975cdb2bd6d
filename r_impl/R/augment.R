# Augmentation of a training batch, seeded from the manifest; twin of python_impl/augment.py.
#
# Left-right and up-down flips (each with probability 1/2), then brightness, contrast and saturation jitter
# (ranges: augment_* in [rules] of parity/presets.toml), then clipping to [0, 1]: the same TensorFlow stateless ops
# as Python, called through reticulate with the same int32 seeds, so both languages get the same bits.

#' Augment one sample: image [H, W, C] and mask [H, W, 1] float32 tensors, seed a (2,) int32 tensor; the
#' jitter ranges from `rules`.
augment_sample <- function(image, mask, seed, rules) {
  tf <- reticulate::import("tensorflow", convert = FALSE)
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
#' `images` [n, H, W, C] and `masks` [n, H, W, 1]: R double arrays (as load_tiles gives them) or numpy arrays;
#' `seeds` an n x 2 integer matrix, the manifest's augment_seeds rows for these samples. Returns
#' list(images, masks) as float32 numpy arrays, like Python.
augment_batch <- function(images, masks, seeds, config) {
  if (!isTRUE(config$augment)) return(list(images = images, masks = masks))
  tf <- reticulate::import("tensorflow", convert = FALSE)
  np <- reticulate::import("numpy", convert = FALSE)
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
