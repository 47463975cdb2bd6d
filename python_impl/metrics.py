"""Segmentation metrics counted from predictions; twin of r_impl/R/metrics.R.

Both languages threshold the probabilities at the rules' ``class_threshold``, count TP/FP/FN/TN as integers and derive every metric from
the counts by the same formulas, so the metrics agree exactly whenever the predictions do.
"""

from __future__ import annotations

import numpy as np


def confusion_counts(probabilities, masks, threshold: float) -> dict:
    """Pixel counts ``{tp, fp, fn, tn}`` of the tailings class: predicted = probability > ``threshold``, truth =
    mask > ``threshold`` (the rules' ``class_threshold``; masks are exactly 0 or 1)."""
    probabilities = np.asarray(probabilities)
    masks = np.asarray(masks)
    if probabilities.size != masks.size:
        raise ValueError(f"predictions have {probabilities.size} pixels, masks {masks.size}")
    pred = probabilities.reshape(-1) > threshold
    truth = masks.reshape(-1) > threshold
    # tp from the joint mask, the rest from the per-class totals: the same steps as the R twin.
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    tn = int(pred.size) - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _ratio(numerator: float, denominator: float):
    """``numerator / denominator``, or None (JSON null) where the denominator is 0."""
    return None if denominator == 0 else float(numerator) / float(denominator)


def segmentation_metrics(counts: dict) -> dict:
    """Accuracy, IoU, F1, precision, recall and the all-background baseline accuracy from ``counts``."""
    tp, fp, fn, tn = (float(counts[k]) for k in ("tp", "fp", "fn", "tn"))
    total = tp + fp + fn + tn
    return {
        "accuracy": _ratio(tp + tn, total),
        "iou": _ratio(tp, tp + fp + fn),
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        # A model that calls every pixel background is right on exactly the background pixels.
        "baseline_accuracy": _ratio(tn + fp, total),
        "tp": int(counts["tp"]), "fp": int(counts["fp"]), "fn": int(counts["fn"]), "tn": int(counts["tn"]),
    }
