# R reads the manifest the harness wrote, with the same ids, batches and seeds, and refuses a tampered one.
test_that("read_manifest gives Python's values with R types, and catches tampering", {
  out <- tempfile("manifest-")
  py_module("parity.data.synthetic")$make_synthetic(out, count = 12L, size = 16L, seed = 1L)
  mf <- py_module("parity.data.manifest")
  config <- list(seed = 42L, encoding = "geotiff", split_train = 0.7, split_val = 0.2, epochs = 3L, batch_size = 4L)
  # 8 train tiles in batches of 4: equal-length batches, which jsonlite would simplify into a matrix.
  m <- mf$make_manifest(reticulate::r_to_py(config), out, as.list(0:11))
  path <- file.path(out, "manifest.json")
  mf$write_manifest(m, path)
  want <- reticulate::py_to_r(m)
  got <- read_manifest(path)
  expect_type(got$train, "integer")
  expect_true(is.list(got$batches[[1]]) && is.integer(got$batches[[1]][[1]]))
  expect_true(is.matrix(got$augment_seeds[[1]]) && is.integer(got$augment_seeds[[1]]))
  expect_identical(got$train, as.integer(unlist(want$train)))
  expect_identical(got$batches, lapply(want$batches, function(e) lapply(e, function(b) as.integer(unlist(b)))))
  expect_identical(got$augment_seeds,
                   lapply(want$augment_seeds, function(e) matrix(as.integer(unlist(e)), ncol = 2, byrow = TRUE)))
  expect_identical(got$fixed_batch, as.integer(unlist(want$fixed_batch)))
  expect_length(verify_files(got), 0L)
  # A data file changed after the manifest was made is named.
  tif <- file.path(out, "img_tiff", "img_3.tif")
  cat("x", file = tif, append = TRUE)
  expect_identical(verify_files(got), "img_tiff/img_3.tif")
  expect_error(check_files(got), "img_tiff/img_3.tif")
  # So is one that vanished, or that became a folder, with the others hashed as before (one call for all files).
  unlink(file.path(out, "mask_tiff", "mask_10.tif"))
  unlink(file.path(out, "mask_tiff", "mask_2.tif"))
  dir.create(file.path(out, "mask_tiff", "mask_2.tif"))
  expect_identical(verify_files(got), c("img_tiff/img_3.tif", "mask_tiff/mask_10.tif", "mask_tiff/mask_2.tif"))
  expect_identical(file_sha256(character(0)), character(0))
  bytes <- py_module("builtins")$open(path, "rb")$read()
  want <- reticulate::py_to_r(py_module("hashlib")$sha256(bytes)$hexdigest())
  expect_identical(file_sha256(c(path, file.path(out, "none"))), c(want, NA_character_))  # unnamed, NA if missing
  # An edited manifest is refused.
  text <- readLines(path)
  writeLines(sub('"seed": 42', '"seed": 41', text), path)
  expect_error(read_manifest(path), "edited after it was written")
})
