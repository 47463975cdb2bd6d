# The built-in pair: the U-Net of the original project (r_impl/R/unet.R), built from the config's variant,
# base_filters, depth, kernel_size, l2 and batch_norm; twin of model.py.

#' The uncompiled U-Net (build_unet of the R twin, sourced before this file).
build_model <- function(config) {
  build_unet(config)
}
