# Rscript entry of the R reader for `tailings-parity data compare`:
#   Rscript r_impl/dump_tiles.R DATA_DIR CONFIG.json IDS OUT.npz
# IDS is a comma-separated list of tile ids (empty: none). Runs dump_tiles() of R/data.R: the arrays read in R
# go to OUT.npz, per-tile errors and read times to OUT.npz.json. Exit 1 with "error: ..." when R stops.
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
entry_dir <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
.r_impl_dir <- entry_dir
args <- commandArgs(trailingOnly = TRUE)
status <- tryCatch({
  # Only the reader and its config: the data comparison must not need TensorFlow.
  source(file.path(entry_dir, "R", "artifacts.R"))  # py_module(): numpy for the float32 rounding
  source(file.path(entry_dir, "R", "config.R"))
  source(file.path(entry_dir, "R", "data.R"))
  config <- jsonlite::fromJSON(args[2])
  ids <- if (nzchar(args[3])) as.integer(strsplit(args[3], ",")[[1]]) else integer(0)
  dump_tiles(args[1], ids, config, args[4])
  0L
}, error = function(e) {
  message("error: ", conditionMessage(e))
  1L
})
quit(status = status, save = "no")
