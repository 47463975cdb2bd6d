# Example pair: a residual U-Net with batch normalisation and dropout, written as a Keras user of R writes it
# through reticulate (default initializers, Keras's own layer names); twin of model.py. Integers as 3L, axes
# 0-based as in Python: raw reticulate converts neither.

#' Two 3 x 3 convolutions with batch normalisation, added to a 1 x 1 projection of the block's input.
residual_block <- function(x, filters, dropout) {
  layers <- reticulate::import("keras")$layers
  shortcut <- layers$Conv2D(filters, 1L, padding = "same")(x)
  y <- layers$Conv2D(filters, 3L, padding = "same")(x)
  y <- layers$BatchNormalization()(y)
  y <- layers$Activation("relu")(y)
  y <- layers$Conv2D(filters, 3L, padding = "same")(y)
  y <- layers$BatchNormalization()(y)
  y <- layers$Add()(list(shortcut, y))
  y <- layers$Activation("relu")(y)
  if (dropout > 0) y <- layers$Dropout(dropout)(y)
  y
}

#' Encoder of residual blocks and max pooling, a bridge, a decoder of upsampling, skip concatenation and
#' residual blocks, and a sigmoid 1 x 1 convolution.
build_model <- function(config) {
  keras <- reticulate::import("keras")
  layers <- keras$layers
  base <- as.integer(config$base_filters)
  depth <- as.integer(config$depth)
  inputs <- keras$Input(shape = list(NULL, NULL, as.integer(config$input_channels)))
  x <- inputs
  skips <- list()
  for (level in seq_len(depth) - 1L) {
    x <- residual_block(x, as.integer(base * 2^level), config$dropout)
    skips[[level + 1L]] <- x
    x <- layers$MaxPooling2D(2L)(x)
  }
  x <- residual_block(x, as.integer(base * 2^depth), config$dropout)
  for (level in rev(seq_len(depth) - 1L)) {
    x <- layers$UpSampling2D(2L)(x)
    x <- layers$Concatenate()(list(x, skips[[level + 1L]]))
    x <- residual_block(x, as.integer(base * 2^level), 0)
  }
  outputs <- layers$Conv2D(1L, 1L, activation = "sigmoid")(x)
  keras$Model(inputs, outputs)
}
