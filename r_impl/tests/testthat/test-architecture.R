# R builds the original papers' networks layer for layer as Python does (architecture_record of both twins).
test_that("build_unet gives Python's architecture record for the paper presets", {
  py_config <- py_module("python_impl.config")
  py_unet <- py_module("python_impl.unet")
  json <- reticulate::import("json", convert = FALSE)
  same <- reticulate::py_eval("lambda a, b: a == b")
  for (preset in c("paper-r", "paper-python")) {
    path <- tempfile(fileext = ".json")
    save_json(architecture_record(build_unet(load_config(preset))), path)
    from_r <- json$loads(paste(readLines(path), collapse = "\n"))
    from_py <- py_unet$architecture_record(py_unet$build_unet(py_config$load_config(preset)))
    expect_true(same(from_r, from_py), label = preset)
  }
})

# The compiled optimizer and loss (compiled.json) as Python records them, for the presets' optimizers, the
# cosine schedule and the BCE + Dice loss.
test_that("compile_model gives Python's compiled record", {
  py_config <- py_module("python_impl.config")
  py_unet <- py_module("python_impl.unet")
  json <- reticulate::import("json", convert = FALSE)
  same <- reticulate::py_eval("lambda a, b: a == b")
  cases <- list(smoke = character(0), ci = character(0), `paper-python` = character(0),
                smoke = c("lr_schedule=cosine", "loss=bce_dice"))
  for (k in seq_along(cases)) {
    preset <- names(cases)[k]
    path <- tempfile(fileext = ".json")
    config <- load_config(preset, cases[[k]])
    save_json(compiled_record(compile_model(build_unet(config), config, 120L)), path)
    from_r <- json$loads(paste(readLines(path), collapse = "\n"))
    py_cfg <- py_config$load_config(preset, as.list(cases[[k]]))
    from_py <- py_unet$compiled_record(py_unet$compile_model(py_unet$build_unet(py_cfg), py_cfg, 120L))
    expect_true(same(from_r, from_py), label = paste(preset, paste(cases[[k]], collapse = " ")))
  }
})

# The config's rules ([schema]) say the same thing in both languages, word for word.
test_that("check_config refuses what Python's refuses, with the same message", {
  py_config <- py_module("python_impl.config")
  cases <- list(c("tile_size=90"), c("epochs=-1"), c("batch_size=0"), c("threads_intra=0"), c("learning_rate=0"),
                c("variant=paper-julia"), c("split_train=0.9", "split_val=0.2"), c("epochs=many"))
  for (overrides in cases) {
    from_r <- tryCatch({load_config("smoke", overrides); "accepted"}, config_error = function(e) conditionMessage(e))
    from_py <- tryCatch({py_config$load_config("smoke", as.list(overrides)); "accepted"},
                        error = function(e) sub("^.*(config key)", "\\1", conditionMessage(e)))
    # reticulate adds a line on py_last_error() below Python's message
    expect_identical(from_r, strsplit(from_py, "\n", fixed = TRUE)[[1]][1], label = paste(overrides, collapse = " "))
    expect_match(from_r, "^config key ")
  }
})
