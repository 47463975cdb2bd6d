"""Crops, BCE + Dice and the cosine schedule (the tailings preset's training) are bit-identical in all three
workers: a smoke run with every option on, compared stage by stage like the default run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity.testing import describe_divergence
from parity.run.runner import Printer, run_parity
from python_impl.config import load_config

OPTIONS = ["crop_size=32", "loss=bce_dice", "lr_schedule=cosine", "augment=true", "epochs=3"]


@pytest.mark.slow
def test_crops_dice_and_cosine_schedule_keep_bit_parity(tmp_path):
    run = run_parity(load_config("smoke", OPTIONS), ["python", "r-rpy2", "r-rscript"], reports_dir=tmp_path,
                     printer=Printer(quiet=True))
    comparison = json.loads((run / "comparison.json").read_text())
    assert comparison["ok"], describe_divergence(comparison)
    assert comparison["verdict"].startswith("PARITY: bit-identical across python, r-rpy2, r-rscript")
    manifest = json.loads((run / "manifest.json").read_text())
    offsets = np.array(manifest["crops"])
    assert manifest["crop_size"] == 32 and offsets.shape[:1] == (3,) and offsets.max() <= 64 - 32
    for impl in ("python", "r-rpy2", "r-rscript"):
        folder = run / "workers" / impl
        compiled = json.loads((folder / "compiled.json").read_text())
        assert compiled["loss"] == {"class_name": "function", "config": {"function": "bce_dice"}}
        assert compiled["optimizer"]["config"]["learning_rate"]["class_name"] == "CosineDecay"
        inputs = json.loads((folder / "architecture.json").read_text())["layers"][0]
        assert inputs["config"]["batch_shape"] == [None, None, None, 3]  # crops to train, whole tiles to validate
        # Whole validation tiles were predicted, and the saved model loads in both languages.
        assert np.load(folder / "predictions_val.npy").shape[1:] == (64, 64)
        crossload = json.loads((folder / "crossload.json").read_text())
        assert crossload["python"]["ok"] and crossload["r"]["ok"], crossload
