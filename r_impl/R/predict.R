# Predict tiles with a saved model and write GeoTIFFs of probabilities and classes; twin of python_impl/predict.py.
#
# For every tile image of data_dir (masks are not needed): read it by the reading rules of the run's config
# (data.R: the same resizing, scaling and channels as in training), predict in batches of the config's batch_size
# with the saved model.keras, and write prob_<id>.tif (float32 probability of tailings) and class_<id>.tif (uint8,
# 1 where the probability is above the rules' class_threshold) with rasterio, as the Python twin does. A GeoTIFF input gives its CRS and its
# extent to both outputs; a JPEG has no georeference, so its outputs have none and predictions.json says so.
# Run as Rscript r_impl/predict.R SPEC.json (parity/run/predict.py writes the spec).

#' Image [row, col, C] of tile `tile_id` by the config's reading rules (R doubles; to_numpy rounds them to
#' float32), and its georeference (list(crs, transform) of the output grid, or NULL for a JPEG).
read_image <- function(data_dir, tile_id, config) {
  path <- tile_paths(data_dir, tile_id, config$encoding)[1]
  raw <- read_file(path)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  rules <- config_rules(config)
  image <- to_channels(image_values(raw$values, raw$meta, path, size, rules), config$input_channels, rules)
  geo <- NULL
  if (raw$meta$geotiff) {
    src <- read_georeference(path)
    a <- src$transform
    out_h <- if (size > 0) size else raw$meta$height
    out_w <- if (size > 0) size else raw$meta$width
    # The same extent on the resized grid: the pixel size grows by in / out.
    geo <- list(crs = src$crs, transform = c(a[1] * raw$meta$width / out_w, a[2], a[3], a[4],
                                             a[5] * raw$meta$height / out_h, a[6]))
  }
  list(image = image, geo = geo)
}

#' R-only helper: the CRS and the six numbers of a GeoTIFF's transform as stored, read through rasterio (the
#' writer below). terra keeps an extent instead and recomputes the pixel size from it, which differs from the
#' file's in the last digits.
read_georeference <- function(path) {
  builtins <- py_module("builtins")
  src <- py_module("rasterio")$open(path)
  on.exit(src$close())
  crs <- if (reticulate::py_to_r(builtins$bool(src$crs))) reticulate::py_to_r(src$crs$to_string()) else NULL
  list(crs = crs, transform = unlist(reticulate::py_to_r(builtins$tuple(src$transform)))[1:6])
}

#' Write prob_<id>.tif (float32) and class_<id>.tif (uint8) of one tile; returns their names.
#'
#' `probabilities` is the tile's float32 NumPy array [H, W]. Written through rasterio, as the Python twin does:
#' terra writes a pixel size recomputed from the extent and a nodata value of its own, so the two languages'
#' files would differ in their metadata.
write_outputs <- function(probabilities, geo, out_dir, tile_id, threshold) {
  np <- py_module("numpy")
  prob <- np$asarray(probabilities, dtype = "float32")
  classes <- np$greater(prob, threshold)$astype("uint8")
  names <- character(0)
  for (item in list(list(sprintf("prob_%d.tif", as.integer(tile_id)), prob, "float32"),
                    list(sprintf("class_%d.tif", as.integer(tile_id)), classes, "uint8"))) {
    shape <- reticulate::py_to_r(item[[2]]$shape)
    profile <- list(driver = "GTiff", height = shape[[1]], width = shape[[2]], count = 1L, dtype = item[[3]],
                    compress = "lzw")
    if (!is.null(geo)) {
      profile$crs <- geo$crs
      profile$transform <- do.call(py_module("rasterio.transform")$Affine, as.list(geo$transform))
    }
    dst <- do.call(py_module("rasterio")$open, c(list(file.path(out_dir, item[[1]]), "w"), profile))
    dst$write(item[[2]], 1L)
    dst$close()
    names <- c(names, item[[1]])
  }
  names
}

#' Predict every tile image of `data_dir`; write the GeoTIFFs and predictions.json; return that record.
predict_tiles <- function(model_path, data_dir, config, out_dir) {
  dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
  np <- py_module("numpy")
  model <- load_saved(model_path, config)
  ids <- integer(0)
  images <- list()
  geos <- list()
  skipped <- list()
  for (tile_id in list_tiles(data_dir, config$encoding)) {
    tile <- tryCatch(read_image(data_dir, tile_id, config), data_error = function(e) conditionMessage(e))
    if (is.character(tile)) {
      skipped[[as.character(tile_id)]] <- tile
      next
    }
    ids <- c(ids, tile_id)
    images[[length(images) + 1L]] <- to_numpy(tile$image)
    geos[length(geos) + 1L] <- list(tile$geo)  # [<- list(): a NULL (JPEG) must stay an element
  }
  threshold <- config_rules(config)$class_threshold
  record <- list(model = model_path, data_dir = data_dir, encoding = config$encoding, tiles = list(),
                 skipped = skipped, georeferenced = identical(config$encoding, "geotiff"))
  if (length(images) > 0L) {
    probabilities <- model$predict(np$stack(images), batch_size = as.integer(config$batch_size), verbose = 0L)
    all_rows <- py_module("builtins")$slice(NULL)
    for (k in seq_along(ids)) {
      # [k - 1, :, :, 0] of the NumPy predictions: 0-based, as Python's probabilities[k, ..., 0].
      tile_prob <- reticulate::py_get_item(probabilities, reticulate::tuple(k - 1L, all_rows, all_rows, 0L))
      record$tiles[[as.character(ids[k])]] <- as.list(write_outputs(tile_prob, geos[[k]], out_dir, ids[k], threshold))
    }
  }
  if (!record$georeferenced) {
    record$notice <- "JPEG input has no georeference: the GeoTIFFs have no CRS and no transform"
  }
  jsonlite::write_json(record, file.path(out_dir, "predictions.json"), auto_unbox = TRUE, pretty = TRUE)
  record
}

#' Predict as `spec_path` says (model, data_dir, config, out_dir), threads and determinism set first.
run_predict <- function(spec_path) {
  spec <- jsonlite::fromJSON(spec_path)
  config <- read_config(spec$config)
  if (!is.null(spec$encoding)) config$encoding <- spec$encoding
  prepare_readers(set_determinism(config)$threads_intra, config$encoding)
  predict_tiles(spec$model, spec$data_dir, config, spec$out_dir)
}
