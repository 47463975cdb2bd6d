# The one config: presets and rules from parity/presets.toml plus overrides; twin of python_impl/config.py.

#' Path of the presets file that both languages read.
presets_path <- function() {
  file.path(project_root(), "parity", "presets.toml")
}

#' The project's root folder: TAILINGS_PARITY_ROOT, or two levels above this file (Python's PROJECT_ROOT;
#' R needs a function because sourced files do not know their own path).
project_root <- function() {
  root <- Sys.getenv("TAILINGS_PARITY_ROOT", "")
  if (nzchar(root)) return(normalizePath(root))
  if (exists(".r_impl_dir", envir = globalenv())) {
    return(normalizePath(file.path(get(".r_impl_dir", envir = globalenv()), "..")))
  }
  normalizePath(".")
}

#' The fixed rules ([rules] of the presets file): reading, augmentation, metrics and harness constants.
load_rules <- function(path = presets_path()) {
  doc <- RcppTOML::parseTOML(path)
  if (is.null(doc$rules)) {
    stop(sprintf("%s: no [rules] table; restore it from git (both languages read their rules there)", path),
         call. = FALSE)
  }
  doc$rules
}

#' The rules of a resolved config (config$rules), or those of the presets file for a hand-made one.
config_rules <- function(config) {
  if (is.null(config$rules)) load_rules() else config$rules
}

#' Names of the presets defined in `path`.
list_presets <- function(path = presets_path()) {
  names(RcppTOML::parseTOML(path)$presets)
}

#' Turn the text of an override into the type of the default value `like`.
coerce_value <- function(key, text, like) {
  if (is.logical(like)) {
    low <- tolower(trimws(text))
    if (low %in% c("true", "1", "yes", "on")) return(TRUE)
    if (low %in% c("false", "0", "no", "off")) return(FALSE)
    stop(sprintf("override %s='%s': expected true or false", key, text), call. = FALSE)
  }
  if (is.integer(like) && !grepl("^[+-]?[0-9]+$", trimws(text))) {
    stop(sprintf("override %s='%s': expected an integer", key, text), call. = FALSE)  # as Python's int()
  }
  if (is.numeric(like)) {
    value <- suppressWarnings(if (is.integer(like)) as.integer(text) else as.numeric(text))
    if (is.na(value)) stop(sprintf("override %s='%s': expected a number", key, text), call. = FALSE)
    return(value)
  }
  text
}

#' Resolve [defaults] + [presets.<preset>] + `overrides` into one flat named list.
#'
#' `overrides` is a named list or a character vector of "key=value" strings.
load_config <- function(preset = "smoke", overrides = NULL, path = presets_path()) {
  doc <- RcppTOML::parseTOML(path)
  if (!preset %in% names(doc$presets)) {
    stop(sprintf("unknown preset '%s'; presets in %s: %s", preset, path,
                 paste(names(doc$presets), collapse = ", ")), call. = FALSE)
  }
  config <- doc$defaults
  for (key in names(doc$presets[[preset]])) {
    if (!key %in% names(config)) {
      stop(sprintf("preset '%s' sets '%s', which [defaults] in %s does not define", preset, key, path),
           call. = FALSE)
    }
    config[[key]] <- doc$presets[[preset]][[key]]
  }
  if (is.character(overrides)) {
    pairs <- list()
    for (item in overrides) {
      if (!grepl("=", item, fixed = TRUE)) stop(sprintf("override '%s': expected key=value", item), call. = FALSE)
      key <- trimws(sub("=.*$", "", item))
      pairs[[key]] <- sub("^[^=]*=", "", item)
    }
    overrides <- pairs
  }
  for (key in names(overrides)) {
    if (key == "rules" || startsWith(key, "rules.")) {
      stop(sprintf(paste0("override '%s': the [rules] of %s are fixed, not settings; change them there only to ",
                          "change what both languages compute"), key, path), call. = FALSE)
    }
    if (!key %in% names(config)) {
      stop(sprintf("unknown config key '%s'; keys: %s", key, paste(sort(names(config)), collapse = ", ")),
           call. = FALSE)
    }
    value <- overrides[[key]]
    config[[key]] <- if (is.character(value)) coerce_value(key, value, config[[key]]) else value
  }
  for (key in c("learning_rate", "l2", "split_train", "split_val")) config[[key]] <- as.numeric(config[[key]])
  config$preset <- preset
  config$rules <- doc$rules  # recorded in config.json: what every worker applies
  config
}

#' Write a resolved config as a run folder's config.json (the harness does this from Python; here for R users).
write_config <- function(config, path) {
  jsonlite::write_json(config, path, auto_unbox = TRUE, digits = NA, pretty = TRUE)
  invisible(path)
}

#' Read a resolved config.json (what every worker reads).
read_config <- function(path) {
  jsonlite::fromJSON(path, simplifyVector = TRUE)
}
