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
