# Read the tailings tiles into the numbers the network sees; twin of python_impl/data.py.
#
# Reading rules (data/README.md, parity/FORMATS.md; their numbers in [rules] of parity/presets.toml): every image
# value is computed in double (R has no float32) and rounded to float32 once, by numpy, where it is handed over
# (tile_writer, to_numpy), the same single rounding as Python's astype(float32); masks are logical, 1/0 in float32.
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

#' Decode an image file as stored: list(values, meta = list(bands, height, width, geotiff, datatype, offset)).
#' GeoTIFF: terra's double values, cells row by row and band after band, starting after `offset` values (0 here,
#' see read_geotiff_tiles); JPEG: a double array [row, col, band] of byte / 255, as readJPEG decodes (exact:
#' round(value * 255) is the byte, for every byte; r_impl/tests checks it). Stops with a data_error for a
#' missing or undecodable file.
read_image_file <- function(path) {
  read_file(path)
}

#' Decode a mask file as stored (as read_image_file).
read_mask_file <- function(path) {
  read_file(path)
}

#' Decode a GeoTIFF (terra) or JPEG (jpeg) file: list(values, meta); the shared body of read_image_file and
#' read_mask_file (Python's _read_file). Stops with a data_error for a missing or undecodable file.
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
        # Doubles byte / 255 in [row, col, band], straight from libjpeg's rows in C: faster than unpacking
        # readJPEG's packed integers (native = TRUE) in R.
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
                                          geotiff = geotiff, datatype = decoded[[3]], offset = 0))
}

#' jpeg::readJPEG of the file `path` (`native`: its packed bytes), stopping for a file that does not end with
#' JPEG's end-of-image marker FF D9: libjpeg then only prints "Premature end of JPEG file" (no R warning) and
#' returns the partial picture, where Pillow raises. Callers turn libjpeg's warnings into errors.
read_jpeg <- function(path, native = FALSE) {
  bytes <- readBin(path, "raw", n = file.size(path))
  n <- length(bytes)
  if (n < 4 || bytes[n - 1] != as.raw(0xff) || bytes[n] != as.raw(0xd9)) {
    stop("file truncated: no end-of-image marker", call. = FALSE)
  }
  jpeg::readJPEG(bytes, native = native)
}

#' terra's SpatRaster of the GeoTIFF file(s) `paths`, read without georeferencing (GDAL's GTiff open option
#' GEOREF_SOURCES=NONE): the reading rules use only the pixels, so this skips parsing each file's CRS, keeps the
#' rows in the file's order (as rasterio's read), and lets tiles of one size stack whatever their extents
#' (read_geotiff_tiles). terra's note "unknown extent" that follows is expected and silenced; every other
#' warning passes on.
geotiff_rast <- function(paths) {
  withCallingHandlers(terra::rast(paths, opts = "GEOREF_SOURCES=NONE"), warning = function(w) {
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
    # are none at a tenth of the cost of is.finite on every value (R needs this shortcut; numpy does not).
    # meta$finite: the caller proved it for a whole stack (read_geotiff_tiles).
    if (!isTRUE(meta$finite) && !is.finite(sum(raw))) {
      bad <- sum(!is.finite(raw))
      if (bad > 0) data_error(sprintf("%s: %d NaN/infinite/nodata value(s); fill or remove the tile", path, bad))
    }
    # R: the kept cells of the bands B4, B3, B2 (RGB), picked in [row, col, band] order in one step.
    cells <- kept_cells(meta, tile_size)
    layer <- meta$height * meta$width
    rgb <- raw[meta$offset + c(cells) + rep(c(2, 1, 0) * layer, each = length(cells))] * rules$geotiff_factor
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
    if (!isTRUE(meta$finite) && !is.finite(sum(raw)) && !all(is.finite(raw))) {
      data_error(sprintf("%s: NaN/infinite/nodata values in the mask; fill or remove the tile", path))
    }
    cells <- kept_cells(meta, tile_size)
    values <- raw[meta$offset + c(cells)]
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

#' Positions in values stored cell by cell, row by row (from 1: terra's values of a GeoTIFF band, libjpeg's
#' packed pixels) of the cells kept by resizing to `tile_size` (0 = keep), as a matrix [row, col]:
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
#' tile_writer, to_numpy). Stops with a data_error naming the tile and the file when the tile breaks a reading rule.
read_tile <- function(data_dir, tile_id, config) {
  encoding <- check_encoding(config$encoding)
  paths <- tile_paths(data_dir, tile_id, encoding)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  rules <- config_rules(config)
  read <- tryCatch({
    raw <- read_image_file(paths[1])
    image <- image_values(raw$values, raw$meta, paths[1], size, rules)
    raw_mask <- read_mask_file(paths[2])
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

# Values per stack of GeoTIFF tiles read at once (read_geotiff_tiles): 32 MB of doubles, 5 tiles of 448 x 448
# (3 bands and a mask). Measured on the ci tiles: 4 tiles a stack read fastest, 16 paid fresh memory (kernel
# time) and 2 half the per-file cost again.
GEOTIFF_STACK_VALUES <- 2^22

# Values read from GeoTIFF stacks between two minor collections in load_tiles (64 MB of doubles, two stacks).
# R only: R frees a stack's vector of doubles at a collection, not when the last reference goes as Python does;
# collected while it is young (read, used and dropped since the last collection) a level-0 collection frees it,
# and glibc hands that memory to the next stacks (with parity/env.py's GLIBC_TUNABLES) instead of fresh pages.
# Figures: parity/BENCHMARKS.md.
GEOTIFF_COLLECT_VALUES <- 2^23

#' Read `tile_ids` in the given order: list(images = float32 NumPy [n, row, col, C], masks = float32 NumPy
#' [n, row, col, 1]), as the Python twin returns them.
#'
#' The arrays are allocated once, at the first tile's size, and each tile's R doubles are written into them as
#' read: NumPy rounds them to float32 in that one assignment (to_numpy's rounding) and lays them out in C order.
#' An R array filled tile by tile, then handed over, cost more than the reading at 448 x 448 (a 357 MB vector
#' written with a stride of n, in Fortran order); a float32 copy per tile and np.stack after them cost twice the
#' memory (fresh memory to fault in).
#'
#' R only: GeoTIFF tiles are read a few at a time as one terra stack (read_geotiff_tiles); where a stack cannot
#' be read (a tile broken, of another size, or breaking a rule), its tiles are read one by one by read_tile,
#' whose errors name the tile. Both ways give the same numbers.
load_tiles <- function(data_dir, tile_ids, config) {
  np <- py_module("numpy")
  n <- length(tile_ids)
  if (n == 0L) {
    size <- if (is.null(config$tile_size)) 0L else as.integer(config$tile_size)
    channels <- if (is.null(config$input_channels)) 3L else as.integer(config$input_channels)
    return(list(images = np$zeros(list(0L, size, size, channels), dtype = "float32"),
                masks = np$zeros(list(0L, size, size, 1L), dtype = "float32")))
  }
  read_some <- if (check_encoding(config$encoding) == "geotiff") read_geotiff_tiles else read_jpeg_tiles
  per_stack <- 1L  # the first stack is one tile; its size sets the others'
  uncollected <- 0  # values read from GeoTIFF stacks since the last collection (GEOTIFF_COLLECT_VALUES)
  k <- 1L
  while (k <= n) {
    ks <- k:min(n, k + per_stack - 1L)
    tiles <- read_some(data_dir, tile_ids[ks], config)
    if (is.null(tiles)) tiles <- lapply(tile_ids[ks], function(tile_id) read_tile(data_dir, tile_id, config))
    for (q in seq_along(ks)) {
      tile <- tiles[[q]]
      dims <- if (is.null(tile$dims)) dim(tile$image) else tile$dims
      if (ks[q] == 1L) {
        first <- dims
        images <- np$empty(as.list(c(n, first)), dtype = "float32")
        masks <- np$empty(as.list(c(n, first[1:2])), dtype = "float32")
        put_tile <- tile_writer(images, masks, config_rules(config))
        if (!is.null(tile$values_read)) per_stack <- max(1L, as.integer(GEOTIFF_STACK_VALUES %/% tile$values_read))
      } else if (any(dims != first)) {
        data_error(sprintf("tile %d: size %d x %d differs from tile %d (%d x %d); set tile_size to resize all tiles",
                           as.integer(tile_ids[ks[q]]), dims[1], dims[2], as.integer(tile_ids[1]), first[1], first[2]))
      }
      put_tile(ks[q] - 1L, tile)  # 0-based, as Python's images[k] = ...
      if (!is.null(tile$values_read)) uncollected <- uncollected + tile$values_read
    }
    k <- max(ks) + 1L
    if (uncollected >= GEOTIFF_COLLECT_VALUES) {  # R only: the stacks read so far are garbage, and still young
      rm(tiles, tile)
      gc(verbose = FALSE, full = FALSE)
      uncollected <- 0
    }
  }
  list(images = images, masks = np$expand_dims(masks, -1L))
}

#' A function(k, tile) that writes a tile (read_tile's list(image, mask), or read_jpeg_tiles' packed bytes) into
#' `images`[k] and `masks`[k] (NumPy, float32 [n, row, col, C] and [n, row, col], k 0-based), by the reading rules
#' `rules`: R's doubles are rounded to float32 by NumPy (to_numpy's rounding) and laid out in C order; packed JPEG
#' bytes are divided by jpeg_scale in float64 and rounded once to float32, and a mask's bytes compared with
#' jpeg_mask_threshold, by NumPy's own operations on a view of R's integers (Python's operations, on the same bytes).
#'
#' R only: NumPy sees R's array without a copy, in Fortran order, so the hand-over of doubles is a transposition.
#' Each tile goes in one call into a float32 buffer in Fortran order (a straight copy), then band by band (each
#' band one contiguous [row, col] plane) into the stack, faster than the whole tile at once (a one-band tile goes
#' straight into the stack, in that one call). The one call matters as much: a
#' NumPy view of R's array held on the R side (to slice its bands) keeps the array alive until a collection
#' finalizes the view, and the next level-0 collection cannot free it then (it has aged): at paper-r 300 MB of
#' tiles waited for a full collection, 0.15-0.19 s, in the validation tiles. Packed bytes are viewed by one call
#' to np.ndarray on R's integers (`$` on a NumPy array costs R ~0.2 ms: reticulate wraps every attribute); that
#' view, too, keeps R's 0.8 MB of integers alive until a collection finalizes it, which at paper-r costs no full
#' collection (99 tiles, 160 MB).
tile_writer <- function(images, masks, rules) {
  np <- py_module("numpy")
  dims <- unlist(reticulate::py_to_r(images$shape))[-1]
  all <- py_attr("builtins", "slice")(NULL)  # Python's `:`
  everything <- reticulate::py_eval("...", convert = FALSE)  # Python's `...`
  bands <- if (dims[3] > 1L) {
    buffer <- np$empty(as.list(dims), dtype = "float32", order = "F")
    lapply(seq_len(dims[3]) - 1L, function(b) reticulate::py_get_item(buffer, reticulate::tuple(all, all, b)))
  }
  bytes_view <- np$ndarray  # (shape, dtype, buffer, offset, strides): bytes of R's integers, no copy
  divide <- np$divide
  greater <- np$greater
  function(k, tile) {
    if (!is.null(tile$dims)) {
      # libjpeg's pixels: bytes R, G, B, A, row by row; the image's first 3 bytes of each, the mask's first.
      pixel_row <- 4L * tile$dims[2]
      divide(bytes_view(as.list(tile$dims), "uint8", tile$image, 0L, list(pixel_row, 4L, 1L)), rules$jpeg_scale,
             out = reticulate::py_get_item(images, k), dtype = "float64")
      greater(bytes_view(as.list(tile$dims[1:2]), "uint8", tile$mask, 0L, list(pixel_row, 4L)),
              rules$jpeg_mask_threshold, out = reticulate::py_get_item(masks, k))
      return(invisible(images))
    }
    if (is.null(bands)) {
      reticulate::py_set_item(images, k, tile$image)
    } else {
      reticulate::py_set_item(buffer, everything, tile$image)
      for (b in seq_along(bands)) reticulate::py_set_item(images, reticulate::tuple(k, all, all, b - 1L), bands[[b]])
    }
    reticulate::py_set_item(masks, k, tile$mask)
    invisible(images)
  }
}

#' Read the RGB JPEG tiles `tile_ids` as libjpeg's packed bytes for load_tiles: per tile list(image, mask, dims =
#' c(rows, cols, 3)), image and mask integer arrays [rows * cols] of one pixel a value (bytes R, G, B, A, row by
#' row: readJPEG's native raster), resized to tile_size; NULL when a tile cannot be read or breaks a reading rule
#' (read_tile then reads the tiles one by one and names the fault), and for input_channels = 1 (the luma is
#' computed from the double RGB: read_tile). tile_writer applies the rules; same numbers as read_tile's.
#'
#' R only: R never holds these tiles as doubles. readJPEG's doubles (4.8 MB a 448 x 448 tile, 6x the packed bytes)
#' are freed only at a collection, and faulting in that fresh memory made R's reading of the paper-r tiles 1.6-2.1x
#' Python's; Python frees its temporaries at once and reuses warm memory.
read_jpeg_tiles <- function(data_dir, tile_ids, config) {
  # tile_writer's views pick the bytes R, G, B of each 32-bit pixel in little-endian order.
  if (.Platform$endian != "little" || (!is.null(config$input_channels) && config$input_channels != 3)) return(NULL)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  # A file's packed pixels, checked to hold `bands` bands; then resized, and the rows and columns it had.
  packed <- function(path, bands) {
    x <- read_jpeg(path, native = TRUE)
    if (!identical(as.integer(attr(x, "channels")), bands)) stop("another band count")
    dims <- dim(x)
    attributes(x) <- list(dim = length(x))  # a 1-d array for NumPy; R wraps the values (ALTREP), no copy
    if (size != 0 && any(dims != size)) {
      x <- x[c(t(kept_cells(list(height = dims[1], width = dims[2]), size)))]  # row by row, as libjpeg's
      dim(x) <- length(x)
    }
    list(values = x, dims = dims)
  }
  tryCatch(withCallingHandlers(lapply(tile_ids, function(tile_id) {
    paths <- tile_paths(data_dir, tile_id, "jpeg")
    image <- packed(paths[1], 3L)
    mask <- packed(paths[2], 1L)
    if (!identical(image$dims, mask$dims)) stop("image and mask sizes differ")
    kept <- if (size == 0) image$dims else c(size, size)
    list(image = image$values, mask = mask$values, dims = as.integer(c(kept, 3)))
  }), warning = function(w) stop(conditionMessage(w), call. = FALSE)), error = function(e) NULL)
}

#' Read the GeoTIFF tiles `tile_ids`, all of one size, as one terra stack into read_tile's list(image, mask)
#' per tile (and `values_read`, the values the tile took); NULL when terra cannot read them as one stack (a file
#' missing, unreadable or of another size, or any warning) or a tile breaks a rule: read_tile then reads them
#' one by one and names the fault. Same numbers as read_tile's.
#'
#' R only: every rast() builds an R object of terra's (about 2 ms) and every values() call opens its files
#' again, so one stack of a few tiles costs about two thirds of reading them file by file (measured on the ci
#' tiles: 178 files 1.2-1.5 s -> 0.86-1.04 s); rasterio has no such cost per file.
read_geotiff_tiles <- function(data_dir, tile_ids, config) {
  paths <- vapply(tile_ids, function(tile_id) tile_paths(data_dir, tile_id, "geotiff"), character(2))
  stack <- tryCatch(withCallingHandlers({
    r <- geotiff_rast(c(paths))  # image, mask, image, mask, ...
    layers <- terra::sources(r, nlyr = TRUE)$nlyr
    list(values = terra::values(r, mat = FALSE), layers = layers, datatypes = terra::datatype(r, bylyr = FALSE),
         starts = (cumsum(layers) - layers) * terra::ncell(r), height = terra::nrow(r), width = terra::ncol(r))
  }, warning = function(w) stop(conditionMessage(w), call. = FALSE)), error = function(e) NULL)
  # One check for the whole stack that every value is finite: a sum of squares (BLAS, half the time of sum()'s
  # long doubles) is NaN or infinite if any value is (or if huge values overflow: then read_tile checks them).
  # A stack that is not finite is read tile by tile, which names the tile.
  if (is.null(stack) || length(stack$layers) != length(paths) || !is.finite(crossprod(stack$values)[1])) return(NULL)
  size <- if (is.null(config$tile_size)) 0 else config$tile_size
  channels <- if (is.null(config$input_channels)) 3 else config$input_channels
  rules <- config_rules(config)
  # read_file's meta of file j of the stack; `offset`: where its values start, `finite`: proven above.
  meta <- function(j) {
    list(bands = stack$layers[j], height = stack$height, width = stack$width, geotiff = TRUE,
         datatype = stack$datatypes[j], offset = stack$starts[j], finite = TRUE)
  }
  tryCatch(lapply(seq_along(tile_ids), function(q) {
    image <- image_values(stack$values, meta(2L * q - 1L), paths[1L, q], size, rules)
    list(image = to_channels(image, channels, rules),
         mask = mask_values(stack$values, meta(2L * q), paths[2L, q], size, rules),
         values_read = (stack$layers[2L * q - 1L] + stack$layers[2L * q]) * stack$height * stack$width)
  }), data_error = function(e) NULL)
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
