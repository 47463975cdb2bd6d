# Example pair: a U-Net whose blocks end in squeeze-and-excitation, with keras ops in the graph and its own loss
# (binary cross-entropy plus Tversky), written as a Keras user of R writes it through reticulate (default
# initializers, Keras's own layer names); twin of model.py. Integers as 3L and axes 0-based as in Python: raw
# reticulate converts neither (keras3 would convert the axes; this file does not use it).

# The tile values are in [0, 1]; the network sees them centred (in the graph, so a saved model needs no extra step).
CENTRE <- 0.5
# Tversky's weight of false negatives (1 - this for false positives): tailings are the rare class.
TVERSKY_ALPHA <- 0.7

#' Channel weights from the block's global mean (squeeze), two dense layers (excite), multiplied back.
squeeze_excite <- function(x, ratio) {
  keras <- reticulate::import("keras")
  channels <- as.integer(x$shape[[4]])
  s <- keras$ops$mean(x, axis = list(1L, 2L), keepdims = TRUE)
  s <- keras$layers$Dense(max(1L, channels %/% ratio), activation = "relu")(s)
  s <- keras$layers$Dense(channels, activation = "sigmoid")(s)
  keras$ops$multiply(x, s)
}

#' Two 3 x 3 ReLU convolutions, then squeeze-and-excitation.
conv_block <- function(x, filters, ratio) {
  layers <- reticulate::import("keras")$layers
  x <- layers$Conv2D(filters, 3L, padding = "same", activation = "relu")(x)
  x <- layers$Conv2D(filters, 3L, padding = "same", activation = "relu")(x)
  squeeze_excite(x, ratio)
}

#' Encoder of SE blocks and max pooling, a bridge, a decoder of transposed convolutions, skip concatenation and SE
#' blocks, and a sigmoid 1 x 1 convolution.
build_model <- function(config) {
  keras <- reticulate::import("keras")
  layers <- keras$layers
  base <- as.integer(config$base_filters)
  depth <- as.integer(config$depth)
  ratio <- as.integer(config$se_ratio)
  inputs <- keras$Input(shape = list(NULL, NULL, as.integer(config$input_channels)))
  x <- keras$ops$subtract(inputs, CENTRE)
  skips <- list()
  for (level in seq_len(depth) - 1L) {
    x <- conv_block(x, as.integer(base * 2^level), ratio)
    skips[[level + 1L]] <- x
    x <- layers$MaxPooling2D(2L)(x)
  }
  x <- conv_block(x, as.integer(base * 2^depth), ratio)
  for (level in rev(seq_len(depth) - 1L)) {
    x <- layers$Conv2DTranspose(as.integer(base * 2^level), 2L, strides = 2L, padding = "same")(x)
    x <- keras$ops$concatenate(list(x, skips[[level + 1L]]), axis = -1L)
    x <- conv_block(x, as.integer(base * 2^level), ratio)
  }
  outputs <- layers$Conv2D(1L, 1L, activation = "sigmoid")(x)
  keras$Model(inputs, outputs)
}

#' Per sample: mean binary cross-entropy plus 1 - Tversky index (smoothed by 1). Keras calls it with tensors,
#' which stay Python objects (convert = FALSE).
loss <- function(y_true, y_pred) {
  keras <- reticulate::import("keras", convert = FALSE)
  ops <- keras$ops
  axes <- list(1L, 2L, 3L)
  bce <- ops$mean(keras$losses$binary_crossentropy(y_true, y_pred), axis = list(1L, 2L))
  tp <- ops$sum(ops$multiply(y_true, y_pred), axis = axes)
  fn <- ops$sum(ops$multiply(y_true, ops$subtract(1, y_pred)), axis = axes)
  fp <- ops$sum(ops$multiply(ops$subtract(1, y_true), y_pred), axis = axes)
  denominator <- ops$add(ops$add(ops$add(tp, ops$multiply(TVERSKY_ALPHA, fn)),
                                 ops$multiply(1 - TVERSKY_ALPHA, fp)), 1)
  ops$add(bce, ops$subtract(1, ops$divide(ops$add(tp, 1), denominator)))
}
