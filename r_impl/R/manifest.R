# Read and verify a run's split manifest; twin of python_impl/manifest.py.
#
# The harness writes the manifest once (parity/data/manifest.py); both languages read it here, check its own
# hash (manifest_sha256, of the text with the field's value blank) and, before training, the sha256 of every
# data file it lists, so that a tile changed after the manifest was made is refused by name, not trained on.
# sha256 comes from Python's hashlib through reticulate: base R has none, and it is the same code as Python's.

MANIFEST_SCHEMA <- "tailings-parity/manifest"
MANIFEST_VERSION <- 1L

# Python's side of file_sha256: the files hashed in blocks of 1 MB, as python_impl/manifest.py does; None for a
# path that is not a file.
# (Run with local = TRUE, so its imports are inside the function: its globals are __main__'s.)
FILE_SHA256_PYTHON <- "
def file_sha256(paths):
    import hashlib, os
    digests = []
    for path in paths:
        if not os.path.isfile(path):
            digests.append(None)
            continue
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        digests.append(digest.hexdigest())
    return digests
"

#' sha256 (hex) of the bytes of each file of `path` (a character vector); NA where a path is not a file.
#'
#' R: one call into Python for all the files. A call per file (open, hash, read the digest, close) cost six
#' reticulate calls a file: 0.09 s for paper-r's 198 JPEGs, where Python's loop takes 0.007 s.
file_sha256 <- function(path) {
  hash_files <- PY_MODULES[["file_sha256"]]
  if (is.null(hash_files)) {
    hash_files <- reticulate::py_run_string(FILE_SHA256_PYTHON, local = TRUE, convert = FALSE)[["file_sha256"]]
    assign("file_sha256", hash_files, envir = PY_MODULES)
  }
  digests <- reticulate::py_to_r(hash_files(as.list(as.character(path))))
  # All strings come back as a character vector, a None among them as a list.
  vapply(digests, function(digest) if (is.null(digest)) NA_character_ else digest, character(1), USE.NAMES = FALSE)
}

#' Check the manifest_sha256 of a manifest's text; returns the hash or stops (manifest edited after writing).
verify_text <- function(text) {
  found <- regmatches(text, regexec('"manifest_sha256": "([0-9a-f]*)"', text))[[1]]
  if (length(found) < 2L) stop("no manifest_sha256 field: not a tailings-parity manifest", call. = FALSE)
  blank <- sub('"manifest_sha256": "[0-9a-f]*"', '"manifest_sha256": ""', text)
  hashlib <- py_module("hashlib")
  digest <- reticulate::py_to_r(hashlib$sha256(reticulate::r_to_py(blank)$encode("utf-8"))$hexdigest())
  if (!identical(digest, found[2])) {
    stop(sprintf(paste0("manifest_sha256 is %s... but the content hashes to %s...: the manifest was edited after it ",
                        "was written; write it again with write_manifest"), substr(found[2], 1, 12),
                 substr(digest, 1, 12)), call. = FALSE)
  }
  digest
}

#' Read and verify a manifest (schema, version and manifest_sha256).
#'
#' Returns a list: train, val, test, fixed_batch as integer vectors (tile ids; fixed_batch 0-based positions
#' into val); batches as a list (epoch) of lists (batch) of integer vectors of 0-based positions into train;
#' augment_seeds and crops (when crop_size > 0) as lists (epoch) of integer matrices (n_train x 2); excluded and
#' files as named lists.
#' jsonlite is asked not to simplify, because it would turn equal-length batches into a matrix.
read_manifest <- function(path) {
  if (!file.exists(path)) stop(sprintf("%s: manifest missing", path), call. = FALSE)
  text <- readChar(path, file.info(path)$size, useBytes = TRUE)
  m <- jsonlite::fromJSON(text, simplifyVector = FALSE)
  if (!identical(m$schema, MANIFEST_SCHEMA) || !identical(as.integer(m$version), MANIFEST_VERSION)) {
    stop(sprintf("%s: schema '%s' version %s, expected '%s' version %d", path, format(m$schema),
                 format(m$version), MANIFEST_SCHEMA, MANIFEST_VERSION), call. = FALSE)
  }
  tryCatch(verify_text(text), error = function(e) stop(sprintf("%s: %s", path, conditionMessage(e)), call. = FALSE))
  ints <- function(x) as.integer(unlist(x))
  m$train <- ints(m$train)
  m$val <- ints(m$val)
  m$test <- ints(m$test)
  m$fixed_batch <- ints(m$fixed_batch)
  m$batches <- lapply(m$batches, function(epoch) lapply(epoch, ints))
  m$augment_seeds <- lapply(m$augment_seeds, function(epoch) matrix(ints(epoch), ncol = 2, byrow = TRUE))
  m$crop_size <- if (is.null(m$crop_size)) 0L else as.integer(m$crop_size)
  m$crops <- lapply(m$crops, function(epoch) matrix(ints(epoch), ncol = 2, byrow = TRUE))
  m
}

#' Files of `manifest` whose bytes changed or vanished since it was written (relative paths, sorted).
verify_files <- function(manifest) {
  rels <- as.character(names(manifest$files))
  digests <- file_sha256(file.path(manifest$data_dir, rels))
  # One recorded digest per file, in order (an entry that is not a string compares as changed).
  recorded <- vapply(manifest$files, function(d) if (is.character(d) && length(d) == 1L) d else NA_character_,
                     character(1), USE.NAMES = FALSE)
  changed <- rels[is.na(digests) | is.na(recorded) | digests != recorded]
  sort(changed, method = "radix")  # bytewise, like Python's sorted()
}

#' Stop naming every data file that changed or vanished since the manifest was written.
check_files <- function(manifest) {
  changed <- verify_files(manifest)
  if (length(changed) > 0L) {
    more <- if (length(changed) > 5L) sprintf(" and %d more", length(changed) - 5L) else ""
    stop(sprintf(paste0("%d data file(s) changed or missing since the manifest was written: %s%s (in %s); restore ",
                        "them, or start a new run (tailings-parity run), which makes a new manifest"),
                 length(changed), paste(head(changed, 5L), collapse = ", "), more, manifest$data_dir), call. = FALSE)
  }
  invisible(NULL)
}
