# Predict tiles with a saved model and write GeoTIFFs of probabilities and classes; twin of python_impl/predict.py.
#
# For every tile image of data_dir (masks are not needed): read it by the reading rules of the run's config
# (data.R: the same resizing, scaling and channels as in training), predict in batches of the config's batch_size
# with the saved model.keras, and write prob_<id>.tif (float32 probability of tailings) and class_<id>.tif (uint8,
# 1 where the probability is above the rules' class_threshold) with terra. A GeoTIFF input gives its CRS and its
# extent to both outputs; a JPEG has no georeference, so its outputs have none and predictions.json says so.
# Run as Rscript r_impl/predict.R SPEC.json (parity/run/predict.py writes the spec).

#' Image [row, col, C] of tile `tile_id` by the config's reading rules (R doubles; to_numpy rounds them to
#' float32), and its georeference (list(crs, extent) of the source, or NULL for a JPEG).
read_image <- function(data_dir, tile_id, config) {
  path <- tile_paths(data_dir, tile_id, config$encoding)[1]
  raw <- read_image_file(path)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  rules <- config_rules(config)
  image <- to_channels(image_values(raw$values, raw$meta, path, size, rules), config$input_channels, rules)
  geo <- NULL
  if (raw$meta$geotiff) {
    src <- terra::rast(path)
    # The same extent on the resized grid: terra derives the pixel size from extent and size.
    geo <- list(crs = terra::crs(src), extent = as.vector(terra::ext(src)))
  }
  list(image = image, geo = geo)
}

#' Write prob_<id>.tif (float32) and class_<id>.tif (uint8) of one tile; returns their names.
#'
#' `probabilities` is the tile's float32 NumPy array [H, W].
write_outputs <- function(probabilities, geo, out_dir, tile_id, threshold) {
  prob <- reticulate::py_to_r(probabilities)  # exact: float32 values as doubles
  classes <- (prob > threshold) * 1L
  names <- character(0)
  for (item in list(list(sprintf("prob_%d.tif", as.integer(tile_id)), prob, "FLT4S"),
                    list(sprintf("class_%d.tif", as.integer(tile_id)), classes, "INT1U"))) {
    r <- terra::rast(nrows = nrow(item[[2]]), ncols = ncol(item[[2]]), nlyrs = 1)
    if (is.null(geo)) {
      terra::crs(r) <- ""
    } else {
      terra::ext(r) <- terra::ext(geo$extent)
      terra::crs(r) <- geo$crs
    }
    terra::values(r) <- as.vector(t(item[[2]]))  # terra takes cells row by row; R matrices are column-major
    terra::writeRaster(r, file.path(out_dir, item[[1]]), datatype = item[[3]], overwrite = TRUE,
                       gdal = c("COMPRESS=LZW"))
    names <- c(names, item[[1]])
  }
  names
}

#' Predict every tile image of `data_dir`; write the GeoTIFFs and predictions.json; return that record.
predict_tiles <- function(model_path, data_dir, config, out_dir) {
  dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
  np <- py_module("numpy")
  model <- load_unet(model_path)
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
