"""``tailings-parity data check`` (parity/data/check.py): its messages quote the rules, never a typed copy."""

from __future__ import annotations

import numpy as np
from PIL import Image

from parity.data import check
from parity.data.synthetic import make_synthetic


def test_a_jpeg_mask_that_differs_names_the_rules_threshold(tmp_path, monkeypatch):
    make_synthetic(tmp_path, count=2, size=32, seed=3)
    path = tmp_path / "mask" / "mask_0.jpeg"
    mask = np.asarray(Image.open(path)).copy()
    mask[:8, :8] = 255 - mask[:8, :8]  # a block of the JPEG mask no longer matches the GeoTIFF mask
    Image.fromarray(mask).save(path, format="JPEG", quality=100)
    rules = dict(check.load_rules(), jpeg_mask_threshold=101)
    # Only the message's copy of the rules: the readers keep theirs, so the same pixels differ.
    monkeypatch.setattr(check, "load_rules", lambda: rules)
    results = check.check_dataset(tmp_path, "both")
    notes = [n for r in results if r["tile"] == 0 and r["encoding"] == "jpeg" for n in r["notes"]]
    assert any(n.startswith("JPEG mask thresholded at 101 differs from the GeoTIFF mask on ") for n in notes), notes
