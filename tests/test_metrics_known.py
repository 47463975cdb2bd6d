"""The segmentation metrics (python_impl/metrics.py) against confusion matrices counted by hand, empty classes
included: a formula bug (IoU without fn, F1 without its 2, baseline as the tailings share) changes a number here,
in the fast tier, without a second language to disagree with.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import numpy as np
import pytest

from python_impl.metrics import confusion_counts, segmentation_metrics

# Ten pixels, counted by hand at threshold 0.5 (predicted: p > 0.5; truth: mask > 0.5):
#   p     0.9 0.8 0.7 0.6 0.55 0.5 0.4 0.3 0.2 0.1
#   mask  1   1   1   0   0    1   0   0   0   0
#         tp  tp  tp  fp  fp   fn  tn  tn  tn  tn     -> tp 3, fp 2, fn 1, tn 4
PROBS = np.float32([0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1])
MASKS = np.float32([1, 1, 1, 0, 0, 1, 0, 0, 0, 0])


def test_counts_of_a_hand_counted_example():
    """tp 3, fp 2, fn 1, tn 4; a probability equal to the threshold (0.5) is background; counts are ints."""
    counts = confusion_counts(PROBS, MASKS, 0.5)
    assert counts == {"tp": 3, "fp": 2, "fn": 1, "tn": 4}
    assert all(type(v) is int for v in counts.values())


def test_counts_ignore_the_layout_of_equal_sized_arrays():
    """Predictions (N, H, W) against masks (N, H, W, 1) or any shape of as many pixels count pixel by pixel."""
    p = PROBS.reshape(2, 5)
    m = MASKS.reshape(2, 5, 1)
    assert confusion_counts(p, m, 0.5) == {"tp": 3, "fp": 2, "fn": 1, "tn": 4}


def test_counts_follow_the_threshold():
    """At threshold 0.65 the two fp pixels (0.6, 0.55) become tn; at 0.05 every pixel is predicted tailings."""
    assert confusion_counts(PROBS, MASKS, 0.65) == {"tp": 3, "fp": 0, "fn": 1, "tn": 6}
    assert confusion_counts(PROBS, MASKS, 0.05) == {"tp": 4, "fp": 6, "fn": 0, "tn": 0}


def test_truth_is_a_mask_above_the_threshold():
    """A mask value equal to the threshold is background, as a probability equal to it is."""
    assert confusion_counts(np.float32([0.9, 0.9]), np.float32([0.5, 1.0]), 0.5) == {"tp": 1, "fp": 1, "fn": 0,
                                                                                      "tn": 0}


def test_counts_refuse_arrays_of_different_size():
    """Predictions and masks of different pixel counts are refused, naming both."""
    with pytest.raises(ValueError) as err:
        confusion_counts(np.zeros((2, 4)), np.zeros((2, 5)), 0.5)
    assert str(err.value) == "predictions have 8 pixels, masks 10"


def test_metrics_of_a_hand_counted_matrix():
    """tp 3, fp 2, fn 1, tn 4: accuracy 7/10, IoU 3/6, F1 6/9, precision 3/5, recall 3/4, baseline 6/10."""
    m = segmentation_metrics({"tp": 3, "fp": 2, "fn": 1, "tn": 4})
    assert m == {"accuracy": 0.7, "iou": 0.5, "f1": 6 / 9, "precision": 0.6, "recall": 0.75,
                 "baseline_accuracy": 0.6, "tp": 3, "fp": 2, "fn": 1, "tn": 4}


def test_metrics_of_an_asymmetric_matrix():
    """Every count different, so that swapping two of them in a formula changes the number:
    tp 5, fp 1, fn 3, tn 11 (20 pixels): IoU 5/9, F1 10/14, precision 5/6, recall 5/8, baseline 12/20."""
    m = segmentation_metrics({"tp": 5, "fp": 1, "fn": 3, "tn": 11})
    assert m["accuracy"] == 16 / 20
    assert m["iou"] == 5 / 9
    assert m["f1"] == 10 / 14
    assert m["precision"] == 5 / 6
    assert m["recall"] == 5 / 8
    assert m["baseline_accuracy"] == 12 / 20
    assert all(type(m[k]) is float for k in ("accuracy", "iou", "f1", "precision", "recall", "baseline_accuracy"))
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (5, 1, 3, 11)


def test_metrics_take_numpy_counts_and_return_python_numbers():
    """Counts given as NumPy integers give plain ints and floats (metrics.json is written with json)."""
    m = segmentation_metrics({k: np.int64(v) for k, v in {"tp": 1, "fp": 1, "fn": 0, "tn": 2}.items()})
    assert type(m["tp"]) is int and type(m["iou"]) is float and m["iou"] == 0.5


@pytest.mark.parametrize("counts, expected", [
    # No tailings anywhere, none predicted: every ratio of tailings pixels is 0/0 (None, JSON null); accuracy 1.
    ({"tp": 0, "fp": 0, "fn": 0, "tn": 6},
     {"accuracy": 1.0, "iou": None, "f1": None, "precision": None, "recall": None, "baseline_accuracy": 1.0}),
    # Tailings present, none predicted (the all-background model): precision 0/0; IoU, F1, recall 0.
    ({"tp": 0, "fp": 0, "fn": 4, "tn": 6},
     {"accuracy": 0.6, "iou": 0.0, "f1": 0.0, "precision": None, "recall": 0.0, "baseline_accuracy": 0.6}),
    # No tailings, some predicted: recall 0/0; IoU, F1, precision 0.
    ({"tp": 0, "fp": 4, "fn": 0, "tn": 6},
     {"accuracy": 0.6, "iou": 0.0, "f1": 0.0, "precision": 0.0, "recall": None, "baseline_accuracy": 1.0}),
    # Tailings everywhere, predicted everywhere: all 1, the baseline (background everywhere) 0.
    ({"tp": 5, "fp": 0, "fn": 0, "tn": 0},
     {"accuracy": 1.0, "iou": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0, "baseline_accuracy": 0.0}),
    # No pixels at all: every ratio 0/0.
    ({"tp": 0, "fp": 0, "fn": 0, "tn": 0},
     {"accuracy": None, "iou": None, "f1": None, "precision": None, "recall": None, "baseline_accuracy": None}),
])
def test_metrics_of_empty_classes(counts, expected):
    """A ratio whose denominator is 0 is None (JSON null), never 0 or NaN; the others are the counted values."""
    m = segmentation_metrics(counts)
    assert {k: m[k] for k in expected} == expected
    assert {k: m[k] for k in ("tp", "fp", "fn", "tn")} == counts


def test_counted_then_derived_end_to_end():
    """An all-background prediction of the example: recall 0, precision undefined, accuracy = baseline."""
    m = segmentation_metrics(confusion_counts(np.zeros(10, np.float32), MASKS, 0.5))
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (0, 0, 4, 6)
    assert m["precision"] is None and m["recall"] == 0.0 and m["accuracy"] == m["baseline_accuracy"] == 0.6
