# The public functions of R files and their argument names, as JSON, read with R's own parser (nothing runs):
#   Rscript r_impl/tests/list_functions.R FILE.R [FILE.R ...]
# Prints {"<file name>": [{"name": ..., "args": [...]}, ...]}: every top-level `name <- function(...)`, in file
# order. tests/test_twin_contract.py pairs these with python_impl/*.py read by Python's ast.
files <- commandArgs(trailingOnly = TRUE)
out <- list()
for (path in files) {
  found <- list()
  for (expr in as.list(parse(path, keep.source = FALSE))) {
    is_assign <- is.call(expr) && as.character(expr[[1]]) %in% c("<-", "=")
    if (is_assign && is.name(expr[[2]]) && is.call(expr[[3]]) && identical(expr[[3]][[1]], as.name("function"))) {
      args <- names(expr[[3]][[2]])
      found[[length(found) + 1L]] <- list(name = as.character(expr[[2]]), args = if (is.null(args)) list() else as.list(args))
    }
  }
  out[[basename(path)]] <- found
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, null = "null"))
