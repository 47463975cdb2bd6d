# row_sha256 hashes every tile in one call: the same digests as Python's array_sha256 of each row (also for an
# array that is not float32 or not contiguous, which both convert first), and none for no rows.
test_that("row_sha256 gives Python's array_sha256 of every row", {
  np <- py_module("numpy")
  python <- py_module("python_impl.artifacts")
  tiles <- np$random$default_rng(5L)$random(list(4L, 6L, 5L, 3L))  # float64
  for (array in list(tiles, np$asarray(tiles, dtype = "float32"), np$transpose(tiles, list(0L, 2L, 1L, 3L)))) {
    expected <- vapply(0:3, function(k) reticulate::py_to_r(python$array_sha256(reticulate::py_get_item(array, k))),
                       character(1))
    expect_identical(row_sha256(array), expected)
  }
  expect_identical(row_sha256(np$zeros(list(0L, 6L, 5L), dtype = "float32")), character(0))
})
