# read_file's JPEG values are readJPEG's doubles: byte / 255 for every byte, so that jpeg_bytes gets the bytes
# back exactly and the rule byte / jpeg_scale holds bit for bit (Pillow gives Python the bytes themselves).
test_that("readJPEG's doubles are byte / 255 and give the bytes back", {
  path <- tempfile(fileext = ".jpeg")
  # 256 flat 16 x 16 squares of the values 0..255 (flat squares survive JPEG exactly), then a ramp beside them.
  flat <- kronecker(matrix(0:255, 16L, 16L), matrix(1, 16L, 16L)) / 255
  ramp <- outer(0:255, 0:255, function(i, j) ((i + j) %% 256) / 255)
  grey <- cbind(flat, ramp)
  jpeg::writeJPEG(array(c(grey, grey, grey), dim = c(dim(grey), 3L)), path, quality = 1)
  native <- jpeg::readJPEG(path, native = TRUE)
  packed <- t(matrix(as.vector(native), nrow = ncol(native), ncol = nrow(native)))  # [row, col] of R + G * 2^8 + ...
  bytes <- vapply(0:2, function(b) bitwAnd(bitwShiftR(packed, 8L * b), 255L), packed)
  dim(bytes) <- c(dim(packed), 3L)
  decoded <- read_file(path)
  expect_equal(length(unique(as.vector(bytes))), 256L)  # every byte value is checked
  expect_identical(decoded$values, bytes / 255)
  expect_identical(jpeg_bytes(decoded$values), bytes * 1)
  expect_identical(c(decoded$meta$height, decoded$meta$width, decoded$meta$bands), c(256L, 512L, 3L))
})

# mask_values compares readJPEG's doubles with floor(threshold) / 255 instead of getting the bytes back: the same
# masks as byte > threshold (Python's rule) for every byte, at whole and fractional thresholds.
test_that("a JPEG mask's byte / 255 against floor(threshold) / 255 is byte > threshold", {
  bytes <- 0:255
  raw <- array(bytes / 255, c(16L, 16L, 1L))
  meta <- list(bands = 1L, geotiff = FALSE)
  for (threshold in c(-1, 0, 0.5, 126.5, 127, 200.99, 254, 255, 300)) {
    rules <- list(jpeg_mask_threshold = threshold)
    expect_identical(mask_values(raw, meta, "mask.jpeg", 0, rules), matrix(bytes > threshold, 16L, 16L),
                     label = paste("threshold", threshold))
  }
})

# load_tiles writes each tile into arrays allocated at the first tile's size: the same bits as Python's, in both
# encodings, and a tile of another size stops it by name (tile_size = 0 keeps the tiles' own sizes).
test_that("load_tiles gives Python's arrays and refuses a tile of another size by name", {
  dir <- tempfile("tiles")
  synthetic <- py_module("parity.data.synthetic")
  synthetic$make_synthetic(file.path(dir, "a"), count = 3L, size = 24L, seed = 3L)
  synthetic$make_synthetic(file.path(dir, "b"), count = 4L, size = 32L, seed = 3L)
  for (rel in c("img_tiff/img_3.tif", "mask_tiff/mask_3.tif", "img/img_3.jpeg", "mask/mask_3.jpeg")) {
    file.copy(file.path(dir, "b", rel), file.path(dir, "a", rel))
  }
  python <- py_module("python_impl.data")
  for (encoding in c("geotiff", "jpeg")) {
    config <- list(encoding = encoding, tile_size = 0L, input_channels = 3L)
    r <- load_tiles(file.path(dir, "a"), c(2L, 0L, 1L), config)
    py <- python$load_tiles(file.path(dir, "a"), list(2L, 0L, 1L), reticulate::r_to_py(config))
    expect_true(py_bits_equal(r$images, reticulate::py_get_item(py, 0L)))
    expect_true(py_bits_equal(r$masks, reticulate::py_get_item(py, 1L)))
    expect_identical(reticulate::py_to_r(r$images$shape), list(3L, 24L, 24L, 3L))
    expect_error(load_tiles(file.path(dir, "a"), c(0L, 3L), config),
                 "tile 3: size 32 x 32 differs from tile 0 \\(24 x 24\\); set tile_size", class = "data_error")
    # Resized: tiles of two sizes cannot share a terra stack (GeoTIFF), so that stack is read tile by tile.
    config$tile_size <- 16L
    r <- load_tiles(file.path(dir, "a"), c(0L, 1L, 3L, 2L), config)
    py <- python$load_tiles(file.path(dir, "a"), list(0L, 1L, 3L, 2L), reticulate::r_to_py(config))
    expect_true(py_bits_equal(r$images, reticulate::py_get_item(py, 0L)))
    expect_true(py_bits_equal(r$masks, reticulate::py_get_item(py, 1L)))
  }
  unlink(dir, recursive = TRUE)
})

# terra reverses the rows of a south-up GeoTIFF (positive pixel height) where rasterio reads them as stored;
# read without georeferencing (geotiff_rast), R gets the stored order too.
test_that("a south-up GeoTIFF reads as Python reads it", {
  dir <- tempfile("southup")
  synthetic <- py_module("parity.data.synthetic")
  synthetic$make_synthetic(dir, count = 3L, size = 24L, seed = 4L)
  np <- py_module("numpy")
  affine <- reticulate::import("rasterio.transform", convert = FALSE)$Affine
  south_up <- affine(0.001, 0, -50, 0, 0.001, -6)
  tile <- synthetic$make_tile(4L, 1L, 24L)
  synthetic$write_geotiff(file.path(dir, "img_tiff", "img_1.tif"), reticulate::py_get_item(tile, 0L), south_up)
  mask <- np$expand_dims(np$asarray(reticulate::py_get_item(tile, 1L), dtype = "uint8"), 0L)
  synthetic$write_geotiff(file.path(dir, "mask_tiff", "mask_1.tif"), mask, south_up)
  config <- list(encoding = "geotiff", tile_size = 0L, input_channels = 3L)
  python <- py_module("python_impl.data")
  py <- python$load_tiles(dir, list(0L, 1L, 2L), reticulate::r_to_py(config))
  r <- load_tiles(dir, c(0L, 1L, 2L), config)
  expect_true(py_bits_equal(r$images, reticulate::py_get_item(py, 0L)))
  expect_true(py_bits_equal(r$masks, reticulate::py_get_item(py, 1L)))
  alone <- read_tile(dir, 1L, config)
  expect_true(py_bits_equal(to_numpy(alone$image), reticulate::py_get_item(reticulate::py_get_item(py, 0L), 1L)))
  unlink(dir, recursive = TRUE)
})

# load_tiles over tiles 1, 2, `bad`, 0 of `dir` stops with read_tile's message for tile `bad` (which names the tile);
# then `dir` is removed.
expect_stops_as_read_tile <- function(dir, bad, config, label) {
  alone <- tryCatch(read_tile(dir, bad, config), data_error = conditionMessage)
  expect_true(is.character(alone) && startsWith(alone, sprintf("tile %d: ", bad)), label = label)
  expect_error(load_tiles(dir, c(1L, 2L, bad, 0L), config), alone, fixed = TRUE, class = "data_error", label = label)
  unlink(dir, recursive = TRUE)
}

# A broken GeoTIFF tile among good ones: load_tiles stops with read_tile's message for that tile, naming it and the
# fault, as when it is read alone.
test_that("load_tiles names a broken GeoTIFF tile as read_tile does", {
  fixtures <- py_module("parity.data.fixtures")
  bad <- reticulate::py_to_r(fixtures$BAD_TILE)
  config <- list(encoding = "geotiff", tile_size = 0L, input_channels = 3L)
  for (kind in c("nan_geotiff", "nodata_mask", "int_geotiff", "narrow_geotiff", "missing_mask")) {
    dir <- reticulate::py_to_r(reticulate::py_str(fixtures$make_fixture(kind, tempfile(kind))))
    expect_stops_as_read_tile(dir, bad, config, kind)
  }
})

# A JPEG tile that breaks a rule: load_tiles stops with read_tile's message naming the tile and the fault.
test_that("load_tiles names a broken JPEG tile as read_tile does", {
  fixtures <- py_module("parity.data.fixtures")
  bad <- reticulate::py_to_r(fixtures$BAD_TILE)
  config <- list(encoding = "jpeg", tile_size = 0L, input_channels = 3L)
  # Faults that only the JPEG files carry: a grey image, an RGB mask, a narrower image than its mask.
  rewrite <- function(values) function(dir, file) jpeg::writeJPEG(values, file.path(dir, file), quality = 1)
  grey <- rewrite(matrix(0.5, 32L, 32L))
  rgb <- rewrite(array(0.5, c(32L, 32L, 3L)))
  narrow <- rewrite(array(0.5, c(32L, 8L, 3L)))
  faults <- list(truncated_jpeg = NULL, missing_mask = NULL, grey_image = list("img", grey),
                 rgb_mask = list("mask", rgb), narrow_image = list("img", narrow))
  for (kind in names(faults)) {
    fault <- faults[[kind]]
    made <- if (is.null(fault)) kind else "truncated_jpeg"
    dir <- reticulate::py_to_r(reticulate::py_str(fixtures$make_fixture(made, tempfile(kind))))
    if (!is.null(fault)) {
      file.copy(file.path(dir, "img", "img_0.jpeg"), file.path(dir, "img", sprintf("img_%d.jpeg", bad)),
                overwrite = TRUE)  # the truncated image made whole again, then the one fault
      fault[[2]](dir, sprintf("%s/%s_%d.jpeg", fault[[1]], fault[[1]], bad))
    }
    expect_stops_as_read_tile(dir, bad, config, kind)
  }
})
