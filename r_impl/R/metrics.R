# Segmentation metrics counted from predictions; twin of python_impl/metrics.py.
#
# Both languages threshold the probabilities at the rules' class_threshold, count TP/FP/FN/TN as integers and derive every metric
# from the counts by the same formulas, so the metrics agree exactly whenever the predictions do.

#' Pixel counts list(tp, fp, fn, tn) of the tailings class: predicted = probability > `threshold`, truth =
#' mask > `threshold` (the rules' class_threshold; masks are exactly 0 or 1).
#'
#' `probabilities` and `masks` are R arrays (or vectors) with the same number of elements.
confusion_counts <- function(probabilities, masks, threshold) {
  if (length(probabilities) != length(masks)) {
    stop(sprintf("predictions have %d pixels, masks %d", length(probabilities), length(masks)), call. = FALSE)
  }
  pred <- probabilities > threshold
  truth <- masks > threshold
  # Flat logical vectors: the shapes may differ ([n, row, col, 1] against [n, row, col]) where the lengths agree.
  dim(pred) <- NULL
  dim(truth) <- NULL
  # tp from the joint mask, the rest from the per-class totals: fewer full-length temporaries than four masks.
  tp <- sum(pred & truth)
  fp <- sum(pred) - tp
  fn <- sum(truth) - tp
  list(tp = tp, fp = fp, fn = fn, tn = length(pred) - tp - fp - fn)
}

#' `numerator / denominator`, or NULL (JSON null) where the denominator is 0.
metric_ratio <- function(numerator, denominator) {
  if (denominator == 0) NULL else as.numeric(numerator) / as.numeric(denominator)
}

#' Accuracy, IoU, F1, precision, recall and the all-background baseline accuracy from `counts`.
segmentation_metrics <- function(counts) {
  # Doubles before any arithmetic: R integers overflow at 2^31, Python's do not.
  tp <- as.numeric(counts$tp)
  fp <- as.numeric(counts$fp)
  fn <- as.numeric(counts$fn)
  tn <- as.numeric(counts$tn)
  total <- tp + fp + fn + tn
  list(
    accuracy = metric_ratio(tp + tn, total),
    iou = metric_ratio(tp, tp + fp + fn),
    f1 = metric_ratio(2 * tp, 2 * tp + fp + fn),
    precision = metric_ratio(tp, tp + fp),
    recall = metric_ratio(tp, tp + fn),
    # A model that calls every pixel background is right on exactly the background pixels.
    baseline_accuracy = metric_ratio(tn + fp, total),
    tp = as.integer(counts$tp), fp = as.integer(counts$fp), fn = as.integer(counts$fn), tn = as.integer(counts$tn)
  )
}
