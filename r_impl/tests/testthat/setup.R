# Shared by every R-side test: the R twin sourced as the worker sources it, and the Python twin beside it.
root <- normalizePath(file.path(testthat::test_path(), "..", "..", ".."))
Sys.setenv(TAILINGS_PARITY_ROOT = root)
.r_impl_dir <- file.path(root, "r_impl")
for (f in sort(list.files(file.path(root, "r_impl", "R"), pattern = "\\.R$", full.names = TRUE), method = "radix")) {
  source(f, local = globalenv())
}
sys <- reticulate::import("sys", convert = FALSE)
sys$path$insert(0L, root)
Sys.setenv(TF_CPP_MIN_LOG_LEVEL = "2")

# py_module(name) (r_impl/R/artifacts.R) gives the Python side's modules (python_impl, parity), not converted.
#' Whether two NumPy arrays have the same shape, dtype and bytes (the parity bar).
py_bits_equal <- function(a, b) {
  np <- reticulate::import("numpy", convert = FALSE)
  a <- np$ascontiguousarray(a)
  b <- np$ascontiguousarray(b)
  reticulate::py_to_r(a$shape == b$shape & a$dtype == b$dtype & a$tobytes() == b$tobytes())
}
