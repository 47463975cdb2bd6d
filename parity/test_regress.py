"""`tailings-parity regress A B`: a changed learning rate shows as regressions in the metrics it worsened."""

from __future__ import annotations

import json

# Whether a higher value is better, for each final metric (written here, not taken from regress.py).
HIGHER_IS_BETTER = {"loss": False, "accuracy": True, "iou": True, "f1": True, "precision": True, "recall": True}


def _final(run, impl="python"):
    last = json.loads((run / "workers" / impl / "metrics.json").read_text())["final"]
    return {f"{s}_{k}": last[s][k] for s in ("train", "val") for k in HIGHER_IS_BETTER}


def test_changed_learning_rate_flags_the_worse_metrics(smoke_run, lr_run, tmp_path, capsys):
    """Exactly the python metrics that got worse are flagged; the config change is warned about."""
    from parity.cli import main

    out_json = tmp_path / "cmp.json"
    rc = main(["regress", str(smoke_run), str(lr_run), "--json", str(out_json)])
    text = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    a, b = _final(smoke_run), _final(lr_run)
    # Worse: a metric that moved the wrong way, or one that became undefined (precision with nothing predicted).
    worse = {k for k in a if a[k] is not None and (b[k] is None or (
        b[k] < a[k] - 1e-6 if HIGHER_IS_BETTER[k.split("_", 1)[1]] else b[k] > a[k] + 1e-6))}
    assert worse, f"learning_rate 1e-5 should leave some metric worse: {a} vs {b}"
    flagged = {r["what"].split(" ", 1)[1] for r in doc["regressions"] if r["what"].startswith("python ")
               and " time " not in r["what"]}
    assert flagged == worse
    assert "val_loss" in worse and "train_loss" in worse
    assert rc == 1 and "REGRESSIONS" in text
    assert any("learning_rate 0.003 -> 1e-05" in w for w in doc["warnings"])
    assert any("workers present in one run only" in w for w in doc["warnings"])


def test_same_run_has_no_regression(smoke_run, capsys):
    """A run compared with itself: no regression, exit 0; the old command name still works, with a notice."""
    from parity.cli import main

    assert main(["regress", str(smoke_run), str(smoke_run)]) == 0
    assert "no regressions" in capsys.readouterr().out
    assert main(["compare", str(smoke_run), str(smoke_run)]) == 0
    captured = capsys.readouterr()
    assert "no regressions" in captured.out and "is now `tailings-parity regress`" in captured.err
