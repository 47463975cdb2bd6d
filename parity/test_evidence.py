"""No verdict without evidence (parity/compare/stages.py): a missing required file fails its stage; a changed
data file is refused by the worker, by name; the architecture stage names a swapped Concatenate and another
learning rate (parity/mistakes/mistakes.toml runs them as R twins); a run says which tiles it leaves out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from parity.env import PROJECT_ROOT
from parity.testing import TINY
from parity.testing import worker_inputs as _worker_inputs
from parity.testing import make_tiles as _tiles


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """`run --impls python` on 8 tiles of which tile 3 is broken and one stray file; its folder and output."""
    root = tmp_path_factory.mktemp("hardening-run")
    data = _tiles(root / "tiles", broken="narrow_geotiff")
    (data / "img_tiff" / "notes.txt").write_text("not a tile\n")
    argv = [sys.executable, "-m", "parity", "run", "--impls", "python", "--data", str(data),
            "--reports-dir", str(root / "reports")] + [a for s in TINY for a in ("--set", s)]
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = list((root / "reports").iterdir())
    return {"dir": run_dir, "stdout": proc.stdout, "data": data, "root": root}


@pytest.mark.heavy
def test_a_run_says_which_tiles_it_leaves_out_and_why(tiny_run):
    out = tiny_run["stdout"]
    assert "7 tiles used, 1 left out" in out
    assert ("  left out: tile 3 (img_tiff/img_3.tif): image 448 x 48, mask 32 x 32: sizes differ; image 448 x 48, "
            "expected 32 x 32") in out, out
    assert (f"warning: stray file img_tiff/notes.txt in {tiny_run['data']}: not a tile file: tile files in "
            "img_tiff/ are named img_N.tif (N the tile id); the readers skip it") in out
    card = json.loads((tiny_run["dir"] / "dataset_card.json").read_text())
    assert card["excluded"].keys() == {"3"} and [s["file"] for s in card["files"]["stray"]] == ["img_tiff/notes.txt"]


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ["strict", "tolerance"])
def test_a_missing_required_file_fails_its_stage(tiny_run, tmp_path, mode):
    """Delete each required file from a copy of a finished worker folder: its stage is "missing", never a pass."""
    from parity.artifacts.contract import required_files
    from parity.compare.stages import REGISTRY, WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    ref = WorkerFolder(source, "python")
    whole = compare_pair(ref, WorkerFolder(source, "copy"), mode)
    assert whole["ok"], whole["first_divergence"]
    stage_of = {name: st.name for st in REGISTRY.values() for name in st.files}
    for name in required_files("worker") + required_files("runner"):
        copy = tmp_path / f"{mode}-{name}"
        shutil.copytree(source, copy)
        (copy / name).unlink()
        pair = compare_pair(ref, WorkerFolder(copy, "copy"), mode)
        verdicts = {s["stage"]: s for s in pair["stages"]}
        stage = verdicts[stage_of[name]]
        assert not pair["ok"] and stage["verdict"] == "missing" and name in stage["summary"], (name, stage)
        assert pair["first_divergence"]["stage"] == stage_of[name]


@pytest.mark.heavy
def test_the_architecture_stage_names_the_wiring_and_the_optimizer(tiny_run, tmp_path):
    """Records edited as a twin with a swapped Concatenate or another learning rate would write them (the real R
    twins with those mistakes run in parity/test_mistakes.py)."""
    from parity.compare.stages import WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    ref = WorkerFolder(source, "python")
    swapped = tmp_path / "swapped"
    shutil.copytree(source, swapped)
    arch = json.loads((swapped / "architecture.json").read_text())
    layer = next(x for x in arch["layers"] if x["name"] == "dec1_concat")
    layer["inputs"] = layer["inputs"][::-1]
    (swapped / "architecture.json").write_text(json.dumps(arch))
    fd = compare_pair(ref, WorkerFolder(swapped, "r"), "strict")["first_divergence"]
    assert (fd["stage"], fd["summary"]) == ("architecture", "layer 11 dec1_concat: inputs ['enc2_conv2', 'dec1_up'] "
                                                            "vs ['dec1_up', 'enc2_conv2'] (layers [6, 10] vs [10, 6])")
    slower = tmp_path / "slower"
    shutil.copytree(source, slower)
    compiled = json.loads((slower / "compiled.json").read_text())
    optimizer, rate = compiled["optimizer"]["class_name"], compiled["optimizer"]["config"]["learning_rate"]
    compiled["optimizer"]["config"]["learning_rate"] = rate / 10
    (slower / "compiled.json").write_text(json.dumps(compiled))
    fd = compare_pair(ref, WorkerFolder(slower, "r"), "tolerance")["first_divergence"]
    assert (fd["stage"], fd["summary"]) == ("architecture", f"optimizer {optimizer} learning_rate {rate:.6g} vs "
                                                            f"{rate / 10:.6g}")


@pytest.mark.heavy
@pytest.mark.parametrize("impl", ["python", "r-rscript"])
def test_a_tile_changed_after_the_manifest_is_refused_by_name(tmp_path, impl):
    from parity.run.workers import spawn_worker

    config_path, manifest_path, data = _worker_inputs(tmp_path, [])
    tile = json.loads(manifest_path.read_text())["train"][0]
    changed = data / "mask_tiff" / f"mask_{tile}.tif"
    changed.write_bytes(changed.read_bytes() + b"\0")  # one byte more: the same pixels, another file
    result = spawn_worker(impl, config_path, manifest_path, tmp_path / "out", timeout_s=300)
    assert not result.ok and result.phase == "data"
    assert f"1 data file(s) changed or missing since the manifest was written: mask_tiff/mask_{tile}.tif" in \
        result.error, result.error
    assert not (tmp_path / "out" / "weights_initial.npz").exists()


@pytest.mark.heavy
def test_renamed_layers_pair_by_place(tiny_run, tmp_path):
    """Layers renamed in the candidate (as Keras's auto-names or a user's own names may differ) still pair by their
    place: the architecture, weights and forward stages stay identical and the architecture lists the names."""
    import numpy as np

    from parity.compare.stages import WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    renamed = tmp_path / "renamed"
    shutil.copytree(source, renamed)
    new = {"enc1_conv1": "conv2d", "dec1_concat": "concatenate_7"}
    arch = json.loads((renamed / "architecture.json").read_text())
    for layer in arch["layers"]:
        layer["name"] = new.get(layer["name"], layer["name"])
        layer["inputs"] = [new.get(n, n) for n in layer["inputs"]]
    (renamed / "architecture.json").write_text(json.dumps(arch))
    for name in ("weights_initial.npz", "weights_final.npz"):
        w = dict(np.load(renamed / name))
        np.savez(renamed / name, **{new.get(k.split("/")[0], k.split("/")[0]) + "/" + k.split("/")[1]: v
                                    for k, v in w.items()})
    layers = json.loads((renamed / "forward_layers.json").read_text())
    for layer in layers["layers"]:
        layer["name"] = new.get(layer["name"], layer["name"])
    (renamed / "forward_layers.json").write_text(json.dumps(layers))
    pair = compare_pair(WorkerFolder(source, "python"), WorkerFolder(renamed, "r"), "strict")
    verdicts = {st["stage"]: st for st in pair["stages"]}
    for stage in ("architecture", "initial_weights", "forward", "final_weights"):
        assert verdicts[stage]["verdict"] == "identical", verdicts[stage]
    assert "2 layers named differently (first: layer 2 enc1_conv1 vs conv2d)" in verdicts["architecture"]["summary"]


@pytest.mark.heavy
def test_forward_names_the_first_differing_layer(tiny_run, tmp_path):
    """One value of one layer's output changed by 1 ULP: the forward stage names that layer, its place and class,
    and its 1 ULP, although the model's output is the same."""
    import numpy as np

    from parity.compare.stages import WorkerFolder, compare_pair
    from python_impl.artifacts import array_sha256

    source = tiny_run["dir"] / "workers" / "python"
    cand = tmp_path / "cand"
    shutil.copytree(source, cand)
    layers = json.loads((cand / "forward_layers.json").read_text())
    target = next(x for x in layers["layers"] if x["name"] == "enc2_conv1")
    arrays = dict(np.load(cand / "forward_layers.npz"))
    a = arrays[target["key"]].copy()
    flat = a.reshape(-1)
    flat[7] = np.nextafter(flat[7], np.float32(np.inf))
    arrays[target["key"]] = a
    np.savez(cand / "forward_layers.npz", **arrays)
    target["sha256"] = array_sha256(a) if target["stored"] == "full" else "0" * 64
    (cand / "forward_layers.json").write_text(json.dumps(layers))
    fd = compare_pair(WorkerFolder(source, "python"), WorkerFolder(cand, "r"), "strict")["first_divergence"]
    assert fd["stage"] == "forward" and fd["location"] == f"layer {target['index'] + 1} enc2_conv1", fd
    assert "enc2_conv1 (Conv2D): max ulp 1" in fd["summary"], fd


@pytest.mark.heavy
def test_batch_order_names_the_row_fed_differently(tiny_run, tmp_path):
    """Two rows of a batch swapped as fed (the same tile ids listed): the batch-order stage names the epoch, batch,
    row and tile, and that the batch holds the same samples in another order."""
    from parity.compare.stages import WorkerFolder, compare_pair

    source = tiny_run["dir"] / "workers" / "python"
    cand = tmp_path / "cand"
    shutil.copytree(source, cand)
    order = json.loads((cand / "batch_order.json").read_text())
    batch = order["samples"][0][0]
    assert len(batch) >= 2 and batch[0] != batch[1]
    batch[0], batch[1] = batch[1], batch[0]
    (cand / "batch_order.json").write_text(json.dumps(order))
    fd = compare_pair(WorkerFolder(source, "python"), WorkerFolder(cand, "r"), "strict")["first_divergence"]
    tile = order["batches"][0][0][0]
    assert fd["stage"] == "batch_order" and fd["location"] == "epoch 1 batch 1 row 1", fd
    assert fd["summary"] == (f"epoch 1 batch 1 row 1 (tile {tile}): the image and mask differ: the batch holds the "
                             "same samples in another order (row 1 holds the reference's row 2)"), fd
