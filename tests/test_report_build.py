"""The report's Quality heading says what the all-background model scores on this run's own validation tiles."""

from __future__ import annotations

from parity.report.build import final_metrics_section, tailings_share


def _results(tp, fp, fn, tn):
    val = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "iou": tp / (tp + fp + fn), "accuracy": (tp + tn) / (tp + fp + fn + tn)}
    return {"final_metrics": {"python": {"train": {}, "val": val}, "r-rscript": {"train": {}, "val": val}}}


def test_tailings_share_is_counted_from_the_confusion_matrix():
    # 133 tailings pixels (tp + fn) of 1000.
    assert tailings_share(_results(tp=100, fp=20, fn=33, tn=847)) == 0.133


def test_the_heading_names_this_runs_share_and_baseline_not_the_real_tiles():
    title = final_metrics_section(_results(tp=100, fp=20, fn=33, tn=847))[0]
    assert "13.3% of the validation pixels are tailings" in title and "scores 0.867 accuracy" in title
    title = final_metrics_section(_results(tp=40, fp=10, fn=50, tn=900))[0]
    assert "9.0% of the validation pixels" in title and "scores 0.910 accuracy" in title


def test_no_counts_no_invented_share():
    title = final_metrics_section({"final_metrics": {"python": {"val": {"iou": 0.5}}}})[0]
    assert "%" not in title and "judge by IoU" in title
