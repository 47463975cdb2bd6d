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
