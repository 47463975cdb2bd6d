# Read the tailings tiles into the numbers the network sees; twin of python_impl/data.py.
#
# Reading rules (data/README.md, parity/FORMATS.md; their numbers in [rules] of parity/presets.toml): every image
# value is computed in double (R has no float32) and rounded to float32 once, by numpy, where it is handed over
# (load_tiles, to_numpy), the same single rounding as Python's astype(float32); masks are logical, 1/0 in float32.
# - GeoTIFF (terra): bands B2, B3, B4 -> RGB = (B4, B3, B2), value = clip(reflectance * geotiff_factor, 0, 1).
# - JPEG (jpeg::readJPEG, Debian's libjpeg62-turbo; decodes the real tiles to the same bytes as Pillow):
#   value = uint8 / jpeg_scale.
# - Greyscale (input_channels = 1): luma[1] * R + luma[2] * G + luma[3] * B from the unrounded double RGB.
# - Masks: GeoTIFF value > geotiff_mask_threshold, JPEG value > jpeg_mask_threshold; exactly 0 or 1.
# - Resizing to tile_size: nearest neighbour, source index floor((2 * i + 1) * in / (2 * out)), 0-based;
#   tile_size = 0 keeps the tiles' own size.

# encoding -> image folder, image pattern, mask folder, mask pattern
# Prefixed with the stage name (Python's are module-level): R sources every file into one environment.
DATA_ENCODINGS <- list(
  geotiff = c("img_tiff", "img_%d.tif", "mask_tiff", "mask_%d.tif"),
  jpeg = c("img", "img_%d.jpeg", "mask", "mask_%d.jpeg")
)

#' Load the decoder of `encoding` (terra for GeoTIFF, jpeg for JPEG) and let GDAL decode a GeoTIFF's blocks on
#' `threads` threads.
#'
#' Run at start-up, as the Python twin imports rasterio or Pillow there: the data phase then times reading, not
#' library loading (terra is slow to load, so a JPEG run does not). GDAL's threads change only how
#' blocks are decoded, never the values.
prepare_readers <- function(threads, encoding) {
  if (check_encoding(encoding) == "geotiff") {
    # Loading terra prints notes about methods (codetools absent); load it quietly, once.
    suppressMessages(requireNamespace("terra", quietly = TRUE))
    terra::setGDALconfig("GDAL_NUM_THREADS", as.character(as.integer(threads)))
  } else {
    requireNamespace("jpeg", quietly = TRUE)
  }
  list(gdal_num_threads = as.integer(threads))
}

#' Signal a data error: a tile that cannot be read into valid numbers (class "data_error").
data_error <- function(message) {
  stop(structure(class = c("data_error", "error", "condition"), list(message = message, call = NULL)))
}

#' Return `encoding` if it is "geotiff" or "jpeg", else stop saying what is allowed.
check_encoding <- function(encoding) {
  if (!encoding %in% names(DATA_ENCODINGS)) {
    data_error(sprintf("unknown encoding '%s': use 'geotiff' (img_tiff/, mask_tiff/) or 'jpeg' (img/, mask/)",
                       encoding))
  }
  encoding
}

#' Paths of the image and the mask file of tile `tile_id` in `encoding` (whether they exist or not).
tile_paths <- function(data_dir, tile_id, encoding) {
  spec <- DATA_ENCODINGS[[check_encoding(encoding)]]
  c(file.path(data_dir, spec[1], sprintf(spec[2], as.integer(tile_id))),
    file.path(data_dir, spec[3], sprintf(spec[4], as.integer(tile_id))))
}

#' Sorted ids of the tiles that have an image file (kind = "mask": a mask file) in `encoding` (img_N.tif,
#' img_N.jpeg, mask_N.tif, mask_N.jpeg).
list_tiles <- function(data_dir, encoding, kind = "image") {
  spec <- DATA_ENCODINGS[[check_encoding(encoding)]]
  at <- if (identical(kind, "image")) 1:2 else 3:4  # folder and pattern of the image, or of the mask
  folder <- file.path(data_dir, spec[at[1]])
  if (!dir.exists(folder)) return(integer(0))
  pattern <- paste0("^", sub("%d", "([0-9]+)", gsub(".", "\\.", spec[at[2]], fixed = TRUE), fixed = TRUE), "$")
  names <- grep(pattern, list.files(folder), value = TRUE)
  sort(as.integer(sub(pattern, "\\1", names)))
}

#' Decode an image or mask file as stored: list(values, meta = list(bands, height, width, geotiff, datatype)).
#' GeoTIFF: terra's double values, cells row by row and band after band; JPEG: a double array [row, col, band]
#' of byte / 255, as readJPEG decodes (exact: round(value * 255) is the byte, for every byte; r_impl/tests checks
#' it). Stops with a data_error for a missing or undecodable file.
read_file <- function(path) {
  if (!file.exists(path)) {
    data_error(sprintf("%s: file missing; every image needs its mask and vice versa (see data/README.md)", path))
  }
  geotiff <- grepl("\\.tif$", path)
  # Loading terra prints notes about methods (codetools absent); load it quietly, once.
  if (geotiff) suppressMessages(requireNamespace("terra", quietly = TRUE))
  # A warning from a decoder (libjpeg: "Premature end of JPEG file") means a damaged file: an error here.
  decoded <- tryCatch(
    withCallingHandlers({
      if (geotiff) {
        r <- geotiff_rast(path)
        # Kept flat: image_values and mask_values pick the cells they keep straight from it (kept_cells).
        list(terra::values(r, mat = FALSE), terra::nlyr(r), terra::datatype(r, bylyr = FALSE), terra::nrow(r),
             terra::ncol(r))
      } else {
        decoded <- read_jpeg(path)
        if (length(dim(decoded)) == 2L) dim(decoded) <- c(dim(decoded), 1L)
        list(decoded, dim(decoded)[3], "INT1U", dim(decoded)[1], dim(decoded)[2])
      }
    }, warning = function(w) stop(conditionMessage(w), call. = FALSE)),
    error = function(e) {
      data_error(sprintf("%s: not a readable %s (%s); re-export or remove the tile", path,
                         if (geotiff) "GeoTIFF" else "JPEG", conditionMessage(e)))
    })
  # decoded = list(values, band count, GDAL data type, rows, columns): no attribute set on the values afterwards,
  # which would copy them.
  list(values = decoded[[1]], meta = list(bands = decoded[[2]], height = decoded[[4]], width = decoded[[5]],
                                          geotiff = geotiff, datatype = decoded[[3]]))
}

#' jpeg::readJPEG of the file `path`, stopping for a file that does not end with JPEG's end-of-image marker
#' FF D9: libjpeg then only prints "Premature end of JPEG file" (no R warning) and returns the partial picture,
#' where Pillow raises. Callers turn libjpeg's warnings into errors.
read_jpeg <- function(path) {
  bytes <- readBin(path, "raw", n = file.size(path))
  n <- length(bytes)
  if (n < 4 || bytes[n - 1] != as.raw(0xff) || bytes[n] != as.raw(0xd9)) {
    stop("file truncated: no end-of-image marker", call. = FALSE)
  }
  jpeg::readJPEG(bytes)
}

#' terra's SpatRaster of the GeoTIFF file `path`, read without georeferencing (GDAL's GTiff open option
#' GEOREF_SOURCES=NONE): the reading rules use only the pixels, so this keeps the rows in the file's order (as
#' rasterio's read) whatever its transform. terra's note "unknown extent" that follows is expected and silenced;
#' every other warning passes on.
geotiff_rast <- function(path) {
  withCallingHandlers(terra::rast(path, opts = "GEOREF_SOURCES=NONE"), warning = function(w) {
    if (grepl("unknown extent", conditionMessage(w), fixed = TRUE)) invokeRestart("muffleWarning")
  })
}

#' JPEG values as read_file gives them (byte / 255) -> the bytes, exactly (integer-valued doubles).
jpeg_bytes <- function(values) {
  round(values * 255)
}

#' Decoded image -> double [row, col, 3] RGB in [0, 1] by the reading rules, resized to `tile_size` (0 = keep).
#'
#' The checks run on the full tile; resizing then selects from the raw values (nearest neighbour only picks
#' values, so scaling fewer of them gives the same numbers). data_error if the tile does not fit the rules.
#' `rules`: the config's rules (default: those of the presets file).
image_values <- function(raw, meta, path, tile_size = 0, rules = NULL) {
  if (is.null(rules)) rules <- load_rules()
  if (meta$bands != 3) {
    data_error(sprintf("%s: %d band(s), expected 3 (GeoTIFF B2, B3, B4 or JPEG RGB)", path, meta$bands))
  }
  if (meta$geotiff) {
    if (!startsWith(meta$datatype, "FLT")) {
      data_error(sprintf("%s: dtype %s, expected float32 reflectance", path, meta$datatype))
    }
    # terra turns nodata into NA, so NaN, infinite and nodata pixels all show here; a finite sum proves there
    # are none at a fraction of the cost of is.finite on every value (R needs this shortcut; numpy does not).
    if (!is.finite(sum(raw))) {
      bad <- sum(!is.finite(raw))
      if (bad > 0) data_error(sprintf("%s: %d NaN/infinite/nodata value(s); fill or remove the tile", path, bad))
    }
    # R: the kept cells of the bands B4, B3, B2 (RGB), picked in [row, col, band] order in one step.
    cells <- kept_cells(meta, tile_size)
    layer <- meta$height * meta$width
    rgb <- raw[c(cells) + rep(c(2, 1, 0) * layer, each = length(cells))] * rules$geotiff_factor
    dim(rgb) <- c(dim(cells), 3L)
    # clip(x, 0, 1) as numpy.clip (no NaN here); in place, where pmin/pmax would copy twice.
    rgb[rgb < 0] <- 0
    rgb[rgb > 1] <- 1
    return(rgb)
  }
  # R: read_file's values are byte / 255 already, which is the rule when jpeg_scale is 255 (the bytes otherwise).
  values <- resize_nearest(raw, tile_size)
  if (rules$jpeg_scale == 255) values else jpeg_bytes(values) / rules$jpeg_scale
}

#' Decoded mask -> logical [row, col], TRUE = tailings (> geotiff_mask_threshold or > jpeg_mask_threshold),
#' resized to `tile_size` (0 = keep). Kept logical, as Python's bool: numpy turns it into float32 1/0 where it is
#' handed over (a double copy of the mask here would cost time and memory per tile).
mask_values <- function(raw, meta, path, tile_size = 0, rules = NULL) {
  if (is.null(rules)) rules <- load_rules()
  if (meta$bands != 1) data_error(sprintf("%s: %d band(s), expected a 1-band mask", path, meta$bands))
  if (meta$geotiff) {
    # A finite sum proves every value finite, as for the images; only a sum that is not (NA, or an overflow of
    # huge finite values) needs the full check (R only; numpy's isfinite is cheap).
    if (!is.finite(sum(raw)) && !all(is.finite(raw))) {
      data_error(sprintf("%s: NaN/infinite/nodata values in the mask; fill or remove the tile", path))
    }
    cells <- kept_cells(meta, tile_size)
    values <- raw[c(cells)]
    dim(values) <- dim(cells)
    return(values > rules$geotiff_mask_threshold)
  }
  # R: byte > threshold is byte / 255 > floor(threshold) / 255 (readJPEG's values are byte / 255, exactly), which
  # skips getting the bytes back; the one band's axis goes after the comparison, on values no one else holds.
  values <- resize_nearest(raw, tile_size) > floor(rules$jpeg_mask_threshold) / 255
  dim(values) <- dim(values)[1:2]
  values
}

#' 0-based nearest-neighbour source indices: floor((2 * i + 1) * size_in / (2 * size_out)).
resize_index <- function(size_in, size_out) {
  i <- seq_len(size_out) - 1
  ((2 * i + 1) * size_in) %/% (2 * size_out)
}

#' Positions in values stored cell by cell, row by row (from 1: terra's values of a GeoTIFF band) of the cells
#' kept by resizing to `tile_size` (0 = keep), as a matrix [row, col]:
#' nearest-neighbour resizing and R's [row, col] order in one index, so that only the kept values are ever copied.
kept_cells <- function(meta, tile_size) {
  keep <- is.null(tile_size) || tile_size == 0
  rows <- resize_index(meta$height, if (keep) meta$height else tile_size)
  cols <- resize_index(meta$width, if (keep) meta$width else tile_size)
  outer(rows * meta$width, cols + 1, "+")
}

#' Resize the first two axes of `array` to `tile_size` by index selection; no-op when they fit or tile_size is 0.
resize_nearest <- function(array, tile_size) {
  if (is.null(tile_size) || tile_size == 0 || all(dim(array)[1:2] == tile_size)) return(array)
  # + 1: R indices are 1-based, the rule is written 0-based.
  rows <- resize_index(dim(array)[1], tile_size) + 1
  cols <- resize_index(dim(array)[2], tile_size) + 1
  if (length(dim(array)) == 3) array[rows, cols, , drop = FALSE] else array[rows, cols, drop = FALSE]
}

#' double RGB [row, col, 3] -> [row, col, input_channels]; 1 = luma (rules luma), summed left to right.
to_channels <- function(rgb, input_channels, rules = NULL) {
  if (input_channels == 3) return(rgb)
  if (input_channels == 1) {
    luma <- (if (is.null(rules)) load_rules() else rules)$luma
    grey <- luma[1] * rgb[, , 1] + luma[2] * rgb[, , 2] + luma[3] * rgb[, , 3]
    dim(grey) <- c(dim(rgb)[1:2], 1L)
    return(grey)
  }
  data_error(sprintf("input_channels = %s: use 3 (RGB) or 1 (greyscale)", input_channels))
}

#' Read tile `tile_id`: list(image = double [row, col, C] in [0, 1], mask = logical [row, col], TRUE = tailings).
#'
#' Uses `config` keys encoding, tile_size (0 = keep the tile's size) and input_channels. The image's values are
#' the exact doubles that round to Python's float32 (NumPy does that rounding where they are handed over:
#' load_tiles, to_numpy). Stops with a data_error naming the tile and the file when the tile breaks a reading rule.
read_tile <- function(data_dir, tile_id, config) {
  encoding <- check_encoding(config$encoding)
  paths <- tile_paths(data_dir, tile_id, encoding)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  rules <- config_rules(config)
  read <- tryCatch({
    raw <- read_file(paths[1])
    image <- image_values(raw$values, raw$meta, paths[1], size, rules)
    raw_mask <- read_file(paths[2])
    mask <- mask_values(raw_mask$values, raw_mask$meta, paths[2], size, rules)
    list(image = image, mask = mask, meta = raw$meta, mask_meta = raw_mask$meta)
  }, data_error = function(e) data_error(sprintf("tile %d: %s", as.integer(tile_id), conditionMessage(e))))
  meta <- read$meta
  mask_meta <- read$mask_meta
  # The sizes as read, before resizing.
  if (meta$height != mask_meta$height || meta$width != mask_meta$width) {
    data_error(sprintf(paste("tile %d: image %d x %d (%s) but mask %d x %d (%s);",
                             "re-export the tile or leave it out"), as.integer(tile_id),
                       meta$height, meta$width, paths[1], mask_meta$height, mask_meta$width, paths[2]))
  }
  channels <- if (is.null(config$input_channels)) 3 else config$input_channels
  list(image = to_channels(read$image, channels, rules), mask = read$mask)
}

#' Read `tile_ids` in the given order: list(images = float32 NumPy [n, row, col, C], masks = float32 NumPy
#' [n, row, col, 1]), as the Python twin returns them.
#'
#' The arrays are allocated once, at the first tile's size, and each tile (read_tile) is written into them as
#' read: NumPy rounds R's doubles to float32 in that one assignment (to_numpy's rounding), lays them out in C
#' order, and turns the logical mask into 1/0.
load_tiles <- function(data_dir, tile_ids, config) {
  np <- py_module("numpy")
  n <- length(tile_ids)
  if (n == 0L) {
    size <- if (is.null(config$tile_size)) 0L else as.integer(config$tile_size)
    channels <- if (is.null(config$input_channels)) 3L else as.integer(config$input_channels)
    return(list(images = np$zeros(list(0L, size, size, channels), dtype = "float32"),
                masks = np$zeros(list(0L, size, size, 1L), dtype = "float32")))
  }
  for (k in seq_len(n)) {
    tile <- read_tile(data_dir, tile_ids[k], config)
    dims <- dim(tile$image)
    if (k == 1L) {
      first <- dims
      images <- np$empty(as.list(c(n, first)), dtype = "float32")
      masks <- np$empty(as.list(c(n, first[1:2])), dtype = "float32")
    } else if (any(dims != first)) {
      data_error(sprintf("tile %d: size %d x %d differs from tile %d (%d x %d); set tile_size to resize all tiles",
                         as.integer(tile_ids[k]), dims[1], dims[2], as.integer(tile_ids[1]), first[1], first[2]))
    }
    reticulate::py_set_item(images, k - 1L, tile$image)  # 0-based, as Python's images[k] = ...
    reticulate::py_set_item(masks, k - 1L, tile$mask)
  }
  list(images = images, masks = np$expand_dims(masks, -1L))
}

#' An R double array as a float32 numpy array, same index meaning ([n, i, j, c] in R is [n-1, i-1, j-1, c-1]).
to_numpy <- function(x) {
  if (inherits(x, "numpy.ndarray")) {  # already handed over: no copy when it is float32
    return(py_module("numpy")$asarray(x, dtype = "float32"))
  }
  reticulate::np_array(x, dtype = "float32")
}

#' Read `tile_ids` one by one, each as the workers read tiles (load_tiles), and write what R read to `out_path`
#' (.npz, float32 via numpy) for parity/data/compare.py (through r_impl/dump_tiles.R): image_<id> (H, W, C) and
#' mask_<id> (H, W); `out_path`.json holds per tile the error message (if the tile could not be read) and the
#' seconds it took.
dump_tiles <- function(data_dir, tile_ids, config, out_path) {
  np <- py_module("numpy")
  all <- py_attr("builtins", "slice")(NULL)  # Python's `:`
  if (identical(config$encoding, "geotiff")) suppressMessages(requireNamespace("terra", quietly = TRUE))  # quietly
  config$rules <- config_rules(config)  # the presets file read once, not once a tile
  arrays <- list()
  errors <- list()
  seconds <- list()
  for (tile_id in tile_ids) {
    key <- as.character(tile_id)
    started <- proc.time()[["elapsed"]]
    tile <- tryCatch(load_tiles(data_dir, tile_id, config), data_error = function(e) conditionMessage(e))
    seconds[[key]] <- proc.time()[["elapsed"]] - started
    if (is.character(tile)) {
      errors[[key]] <- tile
    } else {
      arrays[[paste0("image_", key)]] <- reticulate::py_get_item(tile$images, 0L)
      arrays[[paste0("mask_", key)]] <- reticulate::py_get_item(tile$masks, reticulate::tuple(0L, all, all, 0L))
    }
  }
  do.call(np$savez, c(list(out_path), arrays))
  jsonlite::write_json(list(errors = errors, seconds = seconds), paste0(out_path, ".json"), auto_unbox = TRUE,
                       digits = NA)
  invisible(out_path)
}
