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

# Prefixed with the stage name (Python's are module-level): R sources every file into one environment.
#' Counts of the data that a rule of [schema] may name; known once the tiles are counted (check_config's n_tiles).
CONFIG_COUNTS <- c(n_tiles = "usable tiles", n_train = "training tiles", n_val = "validation tiles")
#' Keys of a resolved config that are no settings: the preset's name and the fixed rules.
CONFIG_RESOLVED_KEYS <- c("preset", "rules")

#' Signal a config mistake (class "config_error", like Python's ConfigError): the workers exit 2 for it.
config_error <- function(message) {
  stop(structure(class = c("config_error", "error", "condition"), list(message = message, call = NULL)))
}

#' The folder of the model pairs shipped with the project (parity/models/), by name.
models_dir <- function() {
  file.path(project_root(), "parity", "models")
}

#' Names of the model pairs in parity/models/.
shipped_pairs <- function() {
  dirs <- list.dirs(models_dir(), full.names = FALSE, recursive = FALSE)
  sort(dirs[file.exists(file.path(models_dir(), dirs, "model.R"))], method = "radix")
}

#' The model pair folder that config `model` names: a pair of parity/models/ by name, or a folder (absolute, or
#' relative to the working folder); a config_error naming the value and the fix otherwise.
model_dir <- function(value) {
  text <- as.character(value)
  if (nzchar(text) && !grepl("/", text, fixed = TRUE) && file.exists(file.path(models_dir(), text, "model.R"))) {
    return(file.path(models_dir(), text))
  }
  if (nzchar(text) && dir.exists(text)) return(normalizePath(text))
  config_error(sprintf(paste0("config key model = '%s': no such model pair folder; give a folder with model.py ",
                              "and model.R (README: Your own model pair) or a shipped pair: %s"), text,
                       paste(shipped_pairs(), collapse = ", ")))
}

#' The [defaults] and [schema] of the pair's model.toml (both empty without one): the pair's own config keys
#' and their rules; a config_error names a broken file.
model_toml <- function(value) {
  path <- file.path(model_dir(value), "model.toml")
  if (!file.exists(path)) return(list(defaults = list(), schema = list()))
  doc <- tryCatch(RcppTOML::parseTOML(path), error = function(e) {
    config_error(sprintf("%s: not valid TOML (%s)", path, conditionMessage(e)))
  })
  other <- sort(as.character(setdiff(names(doc), c("defaults", "schema"))), method = "radix")
  if (length(other) > 0L) {
    config_error(sprintf("%s: [%s] is not a table of a model.toml; it has [defaults] and [schema]", path, other[1]))
  }
  defaults <- if (is.null(doc$defaults)) list() else doc$defaults
  schema <- if (is.null(doc$schema)) list() else doc$schema
  extra <- sort(as.character(setdiff(names(schema), names(defaults))), method = "radix")
  if (length(extra) > 0L) {
    config_error(sprintf("%s: [schema] has a rule for %s, which its [defaults] does not define", path, extra[1]))
  }
  list(path = path, defaults = defaults, schema = schema)
}

#' The rule of every key of [defaults] ([schema] of the presets file) and, with `model`, of the pair's
#' model.toml; a key without a rule gets the type of its default. A pair key that is also a key of the presets
#' file is a config_error naming both.
load_schema <- function(path = presets_path(), model = NULL) {
  doc <- RcppTOML::parseTOML(path)
  schema <- if (is.null(doc$schema)) list() else doc$schema
  extra <- setdiff(names(schema), names(doc$defaults))
  if (length(extra) > 0L) {
    config_error(sprintf("%s: [schema] has rules for %s, which [defaults] does not define", path,
                         paste(sort(extra, method = "radix"), collapse = ", ")))
  }
  defaults <- doc$defaults
  if (!is.null(model)) {
    pair <- model_toml(model)
    clash <- as.character(intersect(names(pair$defaults), c(names(defaults), CONFIG_RESOLVED_KEYS)))
    clash <- sort(clash, method = "radix")
    if (length(clash) > 0L) {
      config_error(sprintf("%s: key %s is also a key of %s; rename the pair's key (for example %s_%s)", pair$path,
                           clash[1], path, basename(dirname(pair$path)), clash[1]))
    }
    for (key in names(pair$schema)) schema[[key]] <- pair$schema[[key]]
    for (key in names(pair$defaults)) defaults[[key]] <- pair$defaults[[key]]
  }
  for (key in names(defaults)) {
    if (is.null(schema[[key]])) {
      v <- defaults[[key]]
      schema[[key]] <- list(type = if (is.logical(v)) "bool" else if (is.integer(v)) "int"
                            else if (is.numeric(v)) "float" else "string")
    }
  }
  schema
}

#' (n_train, n_val, n_test): rounded shares of `n_tiles`; the test split takes the rest (never negative).
#'
#' Rounding is half to even in both languages (R's round, Python's round).
split_sizes <- function(n_tiles, split_train, split_val) {
  n_train <- min(n_tiles, as.integer(round(n_tiles * split_train)))
  n_val <- min(n_tiles - n_train, as.integer(round(n_tiles * split_val)))
  as.integer(c(n_train, n_val, n_tiles - n_train - n_val))
}

#' Check `config` against the rules of [schema] in the presets file; return it with every value in its key's
#' type (int keys integer, float keys double).
#'
#' Keys go in sorted order, three passes: each value alone (type, choices, bounds), then the relations between
#' keys (tile_size a multiple of 2^depth, split_train + split_val <= 1), then, with `n_tiles` (the usable tiles
#' of the run's data), the rules that name the data (batch_size <= the training tiles; each split gets a tile).
#' The first broken rule stops with a config_error naming the key, the value and the rule
#' ("config key batch_size = 0: must be >= 1"): the same messages as Python's check_config.
check_config <- function(config, n_tiles = NULL) {
  # A value as both twins write it in messages: 'text', true/false, 12, 0.001 (Python's repr of a float).
  show <- function(value) {
    if (is.logical(value) && length(value) == 1L && !is.na(value)) return(if (value) "true" else "false")
    if (is.character(value) && length(value) == 1L) return(sprintf("'%s'", value))
    if (is.integer(value) && length(value) == 1L && !is.na(value)) return(as.character(value))
    if (is.double(value) && length(value) == 1L) {
      if (is.nan(value) || is.na(value)) return("nan")
      if (is.infinite(value)) return(if (value > 0) "inf" else "-inf")
      if (value == round(value) && abs(value) < 1e16) return(sprintf("%.1f", value))
      for (digits in 1:17) {  # the shortest text that reads back as the same double, as Python's repr
        text <- formatC(value, digits = digits, format = "g")
        if (as.numeric(text) == value) return(text)
      }
    }
    as.character(jsonlite::toJSON(value, auto_unbox = TRUE))
  }
  fail <- function(key, value, rule) config_error(sprintf("config key %s = %s: %s", key, show(value), rule))
  is_auto <- function(value, rule) isTRUE(rule$auto) && identical(value, "auto")
  typed <- function(key, value, rule) {
    kind <- if (is.null(rule$type)) "string" else rule$type
    if (is_auto(value, rule)) return(value)
    also <- if (isTRUE(rule$auto)) " or 'auto'" else ""
    number <- is.numeric(value) && length(value) == 1L && !is.na(value)
    if (kind == "int") {
      if (!number || !is.finite(value) || value != round(value)) fail(key, value, paste0("must be an integer", also))
      return(if (abs(value) <= .Machine$integer.max) as.integer(value) else value)
    }
    if (kind %in% c("float", "number")) {
      if (!number || !is.finite(value)) fail(key, value, paste0("must be a finite number", also))
      return(if (kind == "float") as.numeric(value) else value)
    }
    if (kind == "bool") {
      if (!(is.logical(value) && length(value) == 1L && !is.na(value))) fail(key, value, "must be true or false")
      return(value)
    }
    if (!(is.character(value) && length(value) == 1L)) fail(key, value, paste0("must be a text", also))
    value
  }
  schema <- load_schema(model = config$model)
  keys <- sort(names(schema), method = "radix")  # radix sorts bytewise, like Python's sorted()
  unknown <- sort(setdiff(names(config), c(keys, CONFIG_RESOLVED_KEYS)), method = "radix")
  if (length(unknown) > 0L) {
    config_error(sprintf("config key %s: not a setting; keys: %s", unknown[1], paste(keys, collapse = ", ")))
  }
  missing <- setdiff(keys, names(config))
  if (length(missing) > 0L) {
    config_error(sprintf(paste0("config key %s: missing; write the config with load_config (it fills in the ",
                                "defaults of parity/presets.toml)"), missing[1]))
  }
  bounds <- list(min = list(`>=`, ">="), max = list(`<=`, "<="), above = list(`>`, ">"), below = list(`<`, "<"))
  for (key in keys) {
    rule <- schema[[key]]
    value <- typed(key, config[[key]], rule)
    config[[key]] <- value
    if (is_auto(value, rule)) next
    if (!is.null(rule$choices) && !value %in% rule$choices) {
      shown <- vapply(rule$choices, function(ch) if (is.character(ch)) sprintf("'%s'", ch) else as.character(ch), "")
      fail(key, value, paste0("must be one of ", paste(shown, collapse = ", ")))
    }
    for (bound in names(bounds)) {
      b <- rule[[bound]]
      if (!is.null(b) && !is.character(b) && !bounds[[bound]][[1]](value, b)) {
        fail(key, value, sprintf("must be %s %s", bounds[[bound]][[2]], show(b)))
      }
    }
  }
  for (key in keys) {
    rule <- schema[[key]]
    value <- config[[key]]
    if (is_auto(value, rule)) next
    if (!is.null(rule$multiple_of)) {
      other <- sub("^2\\^", "", rule$multiple_of)
      step <- as.integer(2^config[[other]])
      if (value %% step != 0) {
        fail(key, value, sprintf("must be a multiple of 2^%s = %d (%s = %s)", other, step, other, show(config[[other]])))
      }
    }
    if (!is.null(rule$sum_max)) {
      other <- rule$sum_max$with
      if (config[[other]] + value > rule$sum_max$max) {
        fail(key, value, sprintf("%s + %s must be <= %s (%s = %s)", other, key, show(rule$sum_max$max), other,
                                 show(config[[other]])))
      }
    }
    if (!is.null(rule$at_most) && value > config[[rule$at_most]]) {
      other <- rule$at_most
      fail(key, value, sprintf("must be <= %s (%s = %s)", other, other, show(config[[other]])))
    }
  }
  if (is.null(n_tiles)) return(config)
  n_tiles <- as.integer(n_tiles)
  sizes <- split_sizes(n_tiles, config$split_train, config$split_val)
  counts <- c(n_tiles = n_tiles, n_train = sizes[1], n_val = sizes[2])
  context <- sprintf("split_train %s and split_val %s of %d usable tiles", show(config$split_train),
                     show(config$split_val), n_tiles)
  # The splits first: a split without tiles explains any bound by those tiles.
  for (key in keys) {
    leaves <- schema[[key]]$leaves
    if (!is.null(leaves) && counts[[leaves$count]] < leaves$min) {
      fail(key, config[[key]], sprintf("leaves %d %s, needs at least %s (%s)", counts[[leaves$count]],
                                       CONFIG_COUNTS[[leaves$count]], show(leaves$min), context))
    }
  }
  for (key in keys) {
    rule <- schema[[key]]
    value <- config[[key]]
    if (is_auto(value, rule)) next
    for (bound in c("min", "max")) {
      b <- rule[[bound]]
      if (is.character(b) && !bounds[[bound]][[1]](value, counts[[b]])) {
        fail(key, value, sprintf("must be %s the %s, %d (%s)", bounds[[bound]][[2]], CONFIG_COUNTS[[b]], counts[[b]],
                                 context))
      }
    }
  }
  config
}

#' Turn the text of an override into the type of its key's `rule` ([schema]); a config_error names the key,
#' the text and the type expected.
coerce_value <- function(key, text, rule) {
  kind <- if (is.null(rule$type)) "string" else rule$type
  word <- trimws(text)
  if (isTRUE(rule$auto) && tolower(word) == "auto") return("auto")
  also <- if (isTRUE(rule$auto)) " or 'auto'" else ""
  fail <- function(what) config_error(sprintf("config key %s = '%s': %s", key, text, what))
  if (kind == "bool") {
    if (tolower(word) %in% c("true", "1", "yes", "on")) return(TRUE)
    if (tolower(word) %in% c("false", "0", "no", "off")) return(FALSE)
    fail("must be true or false")
  }
  integer_text <- grepl("^[+-]?[0-9]+$", word)
  if (kind == "int" || (kind == "number" && integer_text)) {
    if (!integer_text) fail(paste0("must be an integer", also))
    value <- suppressWarnings(as.integer(word))
    return(if (is.na(value)) as.numeric(word) else value)  # beyond R's integers: a whole double
  }
  if (kind %in% c("float", "number")) {
    value <- suppressWarnings(as.numeric(word))
    if (is.na(value) && !tolower(word) %in% c("nan", "+nan", "-nan")) fail(paste0("must be a finite number", also))
    return(value)
  }
  text
}

#' Resolve [defaults] + [presets.<preset>] + `overrides` into one flat named list, checked against [schema]
#' (check_config; a broken rule stops with a config_error naming the key, the value and the rule).
#'
#' `overrides` is a named list or a character vector of "key=value" strings; values given as text take the
#' type of their key's rule.
load_config <- function(preset = "smoke", overrides = NULL, path = presets_path()) {
  doc <- RcppTOML::parseTOML(path)
  if (!preset %in% names(doc$presets)) {
    config_error(sprintf("unknown preset '%s'; presets in %s: %s", preset, path,
                         paste(names(doc$presets), collapse = ", ")))
  }
  config <- doc$defaults
  for (key in names(doc$presets[[preset]])) {
    if (!key %in% names(config)) {
      config_error(sprintf("preset '%s' sets '%s', which [defaults] in %s does not define", preset, key, path))
    }
    config[[key]] <- doc$presets[[preset]][[key]]
  }
  if (is.character(overrides)) {
    pairs <- list()
    for (item in overrides) {
      if (!grepl("=", item, fixed = TRUE)) config_error(sprintf("override '%s': expected key=value", item))
      key <- trimws(sub("=.*$", "", item))
      pairs[[key]] <- sub("^[^=]*=", "", item)
    }
    overrides <- pairs
  }
  # The model pair first: its model.toml adds the keys that the other overrides may set.
  if (!is.null(overrides$model)) config$model <- trimws(as.character(overrides$model))
  folder <- model_dir(config$model)
  if (dirname(folder) != models_dir()) config$model <- folder  # a folder of the user's, absolute
  pair_defaults <- model_toml(config$model)$defaults
  for (key in names(pair_defaults)) config[[key]] <- pair_defaults[[key]]
  schema <- load_schema(path, config$model)
  for (key in names(overrides)) {
    if (key == "rules" || startsWith(key, "rules.")) {
      config_error(sprintf(paste0("override '%s': the [rules] of %s are fixed, not settings; change them there ",
                                  "only to change what both languages compute"), key, path))
    }
    if (!key %in% names(config)) {
      config_error(sprintf("unknown config key '%s'; keys: %s", key,
                           paste(sort(names(config), method = "radix"), collapse = ", ")))
    }
    if (key == "model") next  # set above, resolved
    value <- overrides[[key]]
    config[[key]] <- if (is.character(value)) coerce_value(key, value, schema[[key]]) else value
  }
  config <- check_config(config)  # types too: integers written as floats in TOML stay doubles (learning_rate)
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
