# R augments a batch to the same float32 bits as python_impl/augment.py, RGB and greyscale.
test_that("augment_batch gives Python's bits for the same manifest seeds", {
  out <- tempfile("augment-")
  py_module("parity.data.synthetic")$make_synthetic(out, count = 6L, size = 24L, seed = 9L)
  seeds <- matrix(c(1L, 2L, 3L, 4L, 2147483647L, 0L, 123456L, 654321L, 7L, 7L, 8L, 9L), ncol = 2, byrow = TRUE)
  np <- reticulate::import("numpy", convert = FALSE)
  py_data <- py_module("python_impl.data")
  py_augment <- py_module("python_impl.augment")
  for (channels in c(3L, 1L)) {
    config <- list(encoding = "geotiff", tile_size = 0L, input_channels = channels, augment = TRUE,
                   rules = load_rules())
    d <- load_tiles(out, 0:5, config)
    got <- augment_batch(d$images, d$masks, seeds, config)
    py_tiles <- py_data$load_tiles(out, as.list(0:5), reticulate::r_to_py(config))
    want <- py_augment$augment_batch(reticulate::py_get_item(py_tiles, 0L), reticulate::py_get_item(py_tiles, 1L),
                                     np$array(seeds, dtype = "int32"), reticulate::r_to_py(config))
    expect_true(py_bits_equal(got$images, reticulate::py_get_item(want, 0L)), label = sprintf("images, %d channel(s)", channels))
    expect_true(py_bits_equal(got$masks, reticulate::py_get_item(want, 1L)), label = sprintf("masks, %d channel(s)", channels))
  }
})

test_that("augmentation is off unless the config asks for it", {
  images <- array(0.5, dim = c(1L, 4L, 4L, 3L))
  masks <- array(1, dim = c(1L, 4L, 4L, 1L))
  same <- augment_batch(images, masks, matrix(1:2, ncol = 2), list(augment = FALSE))
  expect_identical(same$images, images)
  expect_identical(same$masks, masks)
})

# R cuts the same crops as python_impl/augment.py (a copy of values: the same bits).
test_that("crop_batch gives Python's crops", {
  np <- reticulate::import("numpy", convert = FALSE)
  images <- np$random$default_rng(3L)$random(c(3L, 10L, 10L, 3L), dtype = "float32")
  masks <- np$random$default_rng(4L)$random(c(3L, 10L, 10L, 1L), dtype = "float32")
  offsets <- matrix(c(0L, 0L, 6L, 2L, 3L, 6L), ncol = 2, byrow = TRUE)
  got <- crop_batch(images, masks, offsets, 4L)
  want <- py_module("python_impl.augment")$crop_batch(images, masks, np$array(offsets, dtype = "int64"), 4L)
  expect_true(py_bits_equal(got$images, reticulate::py_get_item(want, 0L)))
  expect_true(py_bits_equal(got$masks, reticulate::py_get_item(want, 1L)))
  expect_error(crop_batch(images, masks, offsets + 1L, 4L), "leave the 10 x 10 tiles")
})

# R's BCE + Dice, Keras ops called from R, gives Python's loss bits (eager, as split_metrics computes it).
test_that("bce_dice gives Python's bits", {
  np <- reticulate::import("numpy", convert = FALSE)
  ops <- reticulate::import("keras", convert = FALSE)$ops
  y_pred <- ops$convert_to_tensor(np$random$default_rng(5L)$random(c(4L, 16L, 16L, 1L), dtype = "float32"))
  y_true <- ops$convert_to_tensor(np$less(np$random$default_rng(6L)$random(c(4L, 16L, 16L, 1L)), 0.1)$astype("float32"))
  got <- make_loss(list(loss = "bce_dice"))(y_true, y_pred)
  want <- py_module("python_impl.unet")$bce_dice(y_true, y_pred)
  expect_true(py_bits_equal(np$asarray(got), np$asarray(want)))
  expect_equal(as.integer(reticulate::py_to_r(np$asarray(got)$shape[[0L]])), 4L)  # one loss per sample
})
