"""The comparison stages of parity/compare/stages.py on worker folders written here, file by file (the files of
FORMATS.md "Worker output", a few values each): identical, 1 ULP, NaN, a shape change, a missing file, each
mode; then a pair's verdicts, the first divergence, the failed and skipped stages, and the run's verdict line.
The expected stage list and the expected words are written here, not taken from the code under test.

forward and batch_order are not pinned here; the run-level tests (``pinned``) compare the other stages.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from parity.artifacts import diffs
from parity.compare import stages
from parity.errors import CompareError

# Written here, not imported: dropping or reordering a stage must fail a test, not silently lose cases.
EXPECTED_STAGES = ["inputs", "batch_order", "architecture", "initial_weights", "forward", "batch_losses",
                   "final_weights", "predictions", "metrics", "saved_models"]
PINNED = [s for s in EXPECTED_STAGES if s not in ("forward", "batch_order")]
ULP_ABOVE_HALF = float(np.nextafter(np.float32(0.5), np.float32(1)))  # 0.5 + 2^-24

VAL = {"loss": 0.61, "accuracy": 0.75, "iou": 0.5, "f1": 2 / 3, "precision": 0.6, "recall": 0.75,
       "baseline_accuracy": 0.6, "tp": 3, "fp": 2, "fn": 1, "tn": 4}


def base_files(name: str) -> dict:
    """The evidence of a finished worker: 3 tiles (2 in val, 4 x 4 pixels), a 4-layer model, 2 epochs of 3
    batches. Every call builds the same values."""
    rng = np.random.default_rng(7)
    images = rng.random((2, 4, 4, 3), dtype=np.float32)
    masks = np.float32([[[1, 1, 0, 0]] * 4, [[0, 0, 0, 1]] * 4])
    # Probabilities away from the class threshold (0.5): a small change moves no pixel to the other class.
    predictions = (np.where(masks > 0, 0.8, 0.2) + rng.uniform(0, 0.1, masks.shape)).astype(np.float32)
    weights = {"conv/kernel": rng.standard_normal((3, 3, 3, 2)).astype(np.float32),
               "conv/bias": np.float32([0.5, -0.25]),
               "output/kernel": rng.standard_normal((1, 1, 5, 1)).astype(np.float32),
               "output/bias": np.float32([0.125])}
    layers = [
        {"name": "input", "class_name": "InputLayer", "config": {"shape": [4, 4, 3]}, "inputs": [], "params": 0},
        {"name": "conv", "class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3]},
         "inputs": ["input"], "params": 56},
        {"name": "concat", "class_name": "Concatenate", "config": {"axis": -1}, "inputs": ["input", "conv"],
         "params": 0},
        {"name": "output", "class_name": "Conv2D", "config": {"filters": 1, "kernel_size": [1, 1]},
         "inputs": ["concat"], "params": 6},
    ]
    fixed = predictions[:2].copy()
    return {
        "status.json": {"impl": name, "ok": True, "phase": "done", "error": None, "returncode": 0,
                        "stderr_tail": ""},
        "input_hashes.json": {"1": {"image": "i1", "mask": "m1"}, "2": {"image": "i2", "mask": "m2"},
                              "10": {"image": "i10", "mask": "m10"}},
        "inputs_val.npz": {"images": images, "masks": masks},
        "batch_order.json": {"manifest_sha256": "abc", "batches": [[[1, 2]], [[2, 1]]]},
        "architecture.json": {"layers": layers, "total_params": 62, "trainable_params": 62},
        "compiled.json": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001, "beta_1": 0.9}},
                          "loss": {"class_name": "function", "config": {"function": "bce_dice"}},
                          "jit_compile": False, "run_eagerly": False, "steps_per_execution": 1},
        "weights_initial.npz": {k: v * 0.5 for k, v in weights.items()},
        "weights_final.npz": weights,
        "forward_fixed.npy": predictions[..., None],
        "batch_losses.npy": np.float32([[0.75, 0.5, 0.625], [0.5, 0.375, 0.25]]),
        "metrics.json": {"epochs": [{"epoch": 1, "train": {"loss": 0.7}, "val": dict(VAL)},
                                    {"epoch": 2, "train": {"loss": 0.65}, "val": dict(VAL, loss=0.6)}],
                         "final": {"train": dict(VAL, loss=0.64), "val": dict(VAL, loss=0.6)}},
        "predictions_val.npy": predictions,
        "model.keras": b"a saved model",
        "crossload.json": {"self": {"ok": True, "error": None, "file": "crossload_self.npy"},
                           "python": {"ok": True, "error": None, "file": "crossload_python.npy"},
                           "r": {"ok": True, "error": None, "file": "crossload_r.npy"}},
        "crossload_self.npy": fixed, "crossload_python.npy": fixed.copy(), "crossload_r.npy": fixed.copy(),
        "timings.json": {"total": 1.0}, "memory.json": {"peak_rss_mb": 100.0},
        "environment.json": {"threads_intra": 1, "threads_inter": 1},
    }


def write_worker(path, name: str = "python", files: dict | None = None) -> stages.WorkerFolder:
    """A worker folder at ``path`` with ``base_files``, each file of ``files`` replaced (None: not written)."""
    path.mkdir(parents=True)
    for filename, value in dict(base_files(name), **(files or {})).items():
        target = path / filename
        if value is None:
            continue
        if filename.endswith(".json"):
            target.write_text(json.dumps(value))
        elif filename.endswith(".npy"):
            np.save(target, value)
        elif filename.endswith(".npz"):
            np.savez(target, **value)
        else:
            target.write_bytes(value)
    return stages.WorkerFolder(path, name)


def changed(filename: str, edit) -> dict:
    """``{filename: content}``: the base content of ``filename`` after ``edit(content)`` changed it in place."""
    content = base_files("x")[filename]
    edit(content)
    return {filename: content}


@pytest.fixture
def pair(tmp_path):
    """``pair(files, ref_files)``: the reference worker "python" and a candidate "r-test" whose files differ by
    ``files`` (and the reference's by ``ref_files``)."""
    count = iter(range(1000))

    def make(files=None, ref_files=None):
        k = next(count)
        return (write_worker(tmp_path / f"ref{k}", "python", ref_files),
                write_worker(tmp_path / f"cand{k}", "r-test", files))
    return make


def run_stage(name, ref, cand, mode="strict", tolerances=None, manifest=None, rules=None) -> dict:
    """Stage ``name`` of ``ref`` and ``cand``; its result names the stage and its title, whatever the verdict."""
    r = stages.REGISTRY[name].compare(ref, cand, stages.Context(mode, tolerances or {}, manifest, rules))
    assert (r["stage"], r["title"]) == (name, stages.REGISTRY[name].title)
    return r


def one_ulp_up(x):
    return np.nextafter(x, np.float32(np.inf)).astype(x.dtype)


@pytest.fixture
def pinned(monkeypatch):
    """Run-level comparisons over the stages pinned in this file (the list written above)."""
    monkeypatch.setattr(stages, "STAGES", list(PINNED))


# ---------------------------------------------------------------------------------------------- the registry

def test_the_registry_in_data_flow_order_with_phases_files_and_tolerances():
    """Each stage's phase, evidence files and default tolerance (None: exact in every mode), as FORMATS.md and the
    README describe them."""
    assert list(stages.REGISTRY) == EXPECTED_STAGES
    expected = {
        "inputs": ("data", ("input_hashes.json", "inputs_val.npz"), (0.0, 0.0)),
        "architecture": ("build", ("architecture.json", "compiled.json"), None),
        "initial_weights": ("build", ("weights_initial.npz",), (1e-6, 1e-6)),
        "batch_losses": ("train", ("batch_losses.npy",), (1e-3, 1e-3)),
        "final_weights": ("save", ("weights_final.npz",), (1e-3, 1e-3)),
        "predictions": ("evaluation", ("predictions_val.npy",), (1e-3, 1e-3)),
        "metrics": ("train", ("metrics.json",), (1e-3, 1e-3)),
        "saved_models": ("save", ("model.keras", "crossload.json", "timings.json", "memory.json",
                                  "environment.json"), (1e-6, 1e-6)),
    }
    for name, (phase, files, tolerance) in expected.items():
        st = stages.REGISTRY[name]
        assert (st.name, st.phase, st.files, st.tolerance) == (name, phase, files, tolerance), name
    assert stages.REGISTRY["batch_order"].phase == "train" and stages.REGISTRY["batch_order"].tolerance is None
    assert stages.STAGES == EXPECTED_STAGES
    assert stages.MODES == ("strict", "tolerance", "statistical")
    assert stages.PHASES == ("start", "data", "build", "train", "evaluation", "save", "done")


def test_a_stage_declares_itself_once(monkeypatch):
    """``@stage`` registers the function under its name with its declaration, keeps the function, and refuses a
    phase that no worker prints."""
    monkeypatch.setattr(stages, "REGISTRY", {})

    def compare(ref, cand, ctx):
        return {}
    assert stages.stage("extra", title="T", phase="save", files=["a.npy"], tolerance=(1.0, 2.0))(compare) is compare
    assert stages.REGISTRY == {"extra": stages.Stage("extra", "T", "save", ("a.npy",), (1.0, 2.0), compare)}
    with pytest.raises(ValueError) as err:
        stages.stage("bad", title="T", phase="fit", files=())
    assert str(err.value) == ("stage bad: phase 'fit' is not one of ('start', 'data', 'build', 'train', "
                              "'evaluation', 'save', 'done')")
    assert "bad" not in stages.REGISTRY


def test_failed_at_names_the_first_stage_a_phase_writes():
    """A worker that failed in a phase is reported at the first stage that phase writes; an unknown phase at the
    first stage."""
    assert [stages.failed_at(p) for p in stages.PHASES] == [
        "inputs", "inputs", "architecture", "batch_order", "predictions", "final_weights", "saved_models"]
    assert stages.failed_at(None) == stages.failed_at("fit") == "inputs"


def test_a_result_is_ok_only_when_identical_or_within_tolerance():
    """Every verdict's ok flag, and a result's fields: stage, title (the stage's name when unregistered), location,
    summary, details."""
    for verdict, ok in [("identical", True), ("within_tolerance", True), ("differs", False), ("missing", False),
                        ("failed", False), ("skipped", False), ("error", False)]:
        r = stages._result("metrics", verdict, "s", location="here", extra=1)
        assert r == {"stage": "metrics", "title": "metrics per epoch", "verdict": verdict, "ok": ok,
                     "location": "here", "summary": "s", "details": {"extra": 1}}
    assert stages._result("no_such_stage", "identical", "s")["title"] == "no_such_stage"


def test_tolerance_of_a_stage():
    """The context's tolerance for the stage, else the registry's, else exact."""
    ctx = stages.Context("tolerance", {"metrics": (0.5, 0.25)})
    assert stages._tol(ctx, "metrics") == (0.5, 0.25)
    assert stages._tol(ctx, "final_weights") == (1e-3, 1e-3)
    assert stages._tol(ctx, "architecture") == (0.0, 0.0)
    assert stages.DEFAULT_TOLERANCES == {"inputs": (0.0, 0.0), "initial_weights": (1e-6, 1e-6),
                                         "forward": (1e-6, 1e-6), "batch_losses": (1e-3, 1e-3),
                                         "final_weights": (1e-3, 1e-3), "predictions": (1e-3, 1e-3),
                                         "metrics": (1e-3, 1e-3), "saved_models": (1e-6, 1e-6)}


def test_missing_evidence_names_each_file_and_who_did_not_write_it(pair):
    """A stage's required files not written: each named once with the workers that lack it, in the stage's order."""
    ref, cand = pair({"model.keras": None, "memory.json": None}, {"memory.json": None})
    assert stages.missing_evidence("inputs", ref, cand) is None
    got = stages.missing_evidence("saved_models", ref, cand)
    assert got["verdict"] == "missing" and not got["ok"]
    assert got["summary"] == ("model.keras not written by r-test; memory.json not written by python, r-test "
                              "(required by the contract, parity/FORMATS.md)")
    assert got["location"] == "model.keras" and got["details"] == {"missing": ["memory.json", "model.keras"]}


# ---------------------------------------------------------------------------------------------- inputs

def test_inputs_identical(pair):
    """Equal hashes for every tile: identical, with the tile count."""
    r = run_stage("inputs", *pair())
    assert (r["verdict"], r["ok"], r["location"]) == ("identical", True, None)
    assert r["summary"] == "3 tiles, images and masks bit-identical"
    assert r["details"] == {"tiles": 3, "tiles_differ": [], "images_differ": 0, "masks_differ": 0, "hint": None}


def test_inputs_name_the_first_tile_in_numeric_order(pair):
    """Tiles 10 and 2 differ: tile 2 is named first (2 < 10, although "10" < "2" as text)."""
    def edit(h):
        h["10"]["image"] = "other"
        h["2"]["mask"] = "other"
        h["10"]["mask"] = "other"
    r = run_stage("inputs", *pair(changed("input_hashes.json", edit)))
    assert r["verdict"] == "differs" and not r["ok"]
    assert r["summary"] == "2 of 3 tiles differ (1 images, 2 masks); first: tile 2 mask"
    assert r["location"] == "tile 2 mask"
    assert (r["details"]["tiles_differ"], r["details"]["images_differ"], r["details"]["masks_differ"]) == (
        ["10", "2"], 1, 2)
    assert r["details"]["hint"] is None  # the val arrays are equal: nothing to diagnose


def test_inputs_a_tile_read_by_one_worker_only(pair):
    """A tile that one worker did not read differs in both its image and its mask."""
    r = run_stage("inputs", *pair(changed("input_hashes.json", lambda h: h.pop("1"))))
    assert r["summary"] == "1 of 3 tiles differ (1 images, 1 masks); first: tile 1 image"


@pytest.mark.parametrize("edit, what, hint", [
    (lambda z: z.update(masks=1 - z["masks"]), "mask", "the mask is inverted (candidate = 1 - reference)"),
    (lambda z: z.update(images=np.ascontiguousarray(np.swapaxes(z["images"], 1, 2))), "image",
     "rows and columns are swapped (an R array not permuted into NHWC?)"),
    (lambda z: z.update(images=np.ascontiguousarray(z["images"][..., ::-1])), "image",
     "the channel order is reversed (BGR vs RGB?)"),
    (lambda z: z.update(images=one_ulp_up(z["images"])), "image",
     "values differ by at most 1 ULP: the same formula rounded differently (float64 cast late?)"),
    (lambda z: z.update(images=np.nextafter(one_ulp_up(z["images"]), np.float32(2))), "image",
     "values differ by at most 2 ULP: the same formula rounded differently (float64 cast late?)"),
    (lambda z: z.update(images=np.nextafter(np.nextafter(one_ulp_up(z["images"]), np.float32(2)), np.float32(2))),
     "image", None),                                       # 3 ULP: no longer "rounded differently"
    (lambda z: z.update(masks=np.ascontiguousarray(np.swapaxes(z["masks"], 1, 2))), "mask",
     "rows and columns are swapped (an R array not permuted into NHWC?)"),
    (lambda z: z.update(images=z["images"][..., :1].copy()), "image", "shapes differ: (4, 4, 3) vs (4, 4, 1)"),
    (lambda z: z.update(images=z["images"] + np.float32(0.25)), "image", None),
])
def test_inputs_diagnose_the_classic_mistakes(pair, edit, what, hint):
    """When the val arrays differ, the first val tile's is checked for the known mistakes of a reader."""
    def hashes(h):
        h["1"][what] = "other"
    r = run_stage("inputs", *pair({**changed("inputs_val.npz", edit), **changed("input_hashes.json", hashes)}))
    assert r["details"]["hint"] == hint
    head = f"1 of 3 tiles differ ({int(what == 'image')} images, {int(what == 'mask')} masks); first: tile 1 {what}"
    assert r["summary"] == (f"{head}; {hint}" if hint else head)
    key = "val_images" if what == "image" else "val_masks"
    ref_z, cand_z = base_files("x")["inputs_val.npz"], changed("inputs_val.npz", edit)["inputs_val.npz"]
    assert r["details"][key] == diffs.array_diff(ref_z[key[4:]], cand_z[key[4:]])


def test_inputs_diagnose_only_what_both_workers_wrote(pair):
    """The val arrays are read for a hint only when the hashes differ and both workers wrote them, key by key;
    equal arrays add nothing."""
    def hashes(h):
        h["1"]["mask"] = "other"
    r = run_stage("inputs", *pair(changed("input_hashes.json", hashes)))
    assert "val_images" not in r["details"] and "val_masks" not in r["details"]
    r = run_stage("inputs", *pair(None, {"inputs_val.npz": None}))
    assert r["verdict"] == "identical"
    r = run_stage("inputs", *pair({**changed("input_hashes.json", hashes), "inputs_val.npz": None}))
    assert r["details"]["hint"] is None and "val_masks" not in r["details"]
    r = run_stage("inputs", *pair(changed("input_hashes.json", hashes), {"inputs_val.npz": None}))
    assert r["details"]["hint"] is None
    images_only = {"inputs_val.npz": {"images": base_files("x")["inputs_val.npz"]["images"]}}
    r = run_stage("inputs", *pair({**changed("input_hashes.json", hashes), **images_only}))
    assert r["details"]["hint"] is None and "val_masks" not in r["details"]


def test_inputs_hint_from_the_first_array_of_as_many_tiles(pair):
    """The images' hint comes before the masks'; val arrays of different tile counts get no hint."""
    def both(z):
        z["images"] = np.ascontiguousarray(z["images"][..., ::-1])
        z["masks"] = 1 - z["masks"]
    def hashes(h):
        h["1"]["image"] = h["1"]["mask"] = "other"
    r = run_stage("inputs", *pair({**changed("inputs_val.npz", both), **changed("input_hashes.json", hashes)}))
    assert r["details"]["hint"] == "the channel order is reversed (BGR vs RGB?)"
    fewer = changed("inputs_val.npz", lambda z: z.update(images=z["images"][:1].copy()))
    r = run_stage("inputs", *pair({**fewer, **changed("input_hashes.json", hashes)}))
    assert r["details"]["hint"] is None and r["details"]["val_images"]["shape_b"] == [1, 4, 4, 3]


def test_inputs_a_tile_id_that_is_no_number(pair):
    """A tile id that is no number is compared too (sorted as 0, before tile 1)."""
    def edit(h):
        h["x"] = {"image": "ix", "mask": "mx"}
        h["1"]["image"] = "other"
    ref_files = changed("input_hashes.json", lambda h: h.update(x={"image": "ix", "mask": "other"}))
    r = run_stage("inputs", *pair(changed("input_hashes.json", edit), ref_files))
    assert r["summary"] == "2 of 4 tiles differ (1 images, 1 masks); first: tile x mask"


def test_input_hint_needs_the_same_shape_and_a_square_for_a_swap():
    """The hints of _input_hint claim nothing they cannot show: a shape change is said as such, equal arrays and
    far-off values get no hint."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert stages._input_hint(a, np.ascontiguousarray(a.T), "image") == "shapes differ: (2, 3) vs (3, 2)"
    assert stages._input_hint(a, a.copy(), "image") is None
    assert stages._input_hint(a, 1 - a, "image") is None  # only a mask is "inverted"
    m = np.float32([[1, 0], [0, 0]])
    assert stages._input_hint(m, 1 - m, "mask") == "the mask is inverted (candidate = 1 - reference)"
    assert stages._input_hint(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), "image") is None
    far = np.float32([1.0, 2.0])
    assert stages._input_hint(far, far + np.float32(1e-3), "image") is None
    three = np.float32([[1, 2], [3, 4]])[..., None].repeat(3, axis=2)
    assert stages._input_hint(three, three.copy(), "image") is None  # equal channels: no "reversed" claim


def test_inputs_missing_hashes(pair):
    """No input_hashes.json: the inputs stage is missing, naming the worker."""
    r = run_stage("inputs", *pair({"input_hashes.json": None}))
    assert (r["stage"], r["title"], r["verdict"], r["ok"], r["location"]) == (
        "inputs", "input data (per tile)", "missing", False, None)
    assert r["summary"] == "input_hashes.json not written by r-test"


# ---------------------------------------------------------------------------------------------- architecture

def _arch(edit):
    return changed("architecture.json", edit)


ARCH_DETAILS = {"layers": 4, "total_params": {"python": 62, "r-test": 62},
                "trainable_params": {"python": 62, "r-test": 62}, "renamed": []}


def assert_arch(r, verdict, location, summary, **details):
    """An architecture result: its verdict, location, summary and details (ARCH_DETAILS updated by ``details``)."""
    assert (r["stage"], r["title"], r["verdict"], r["location"], r["summary"]) == (
        "architecture", "architecture", verdict, location, summary)
    assert r["details"] == {**ARCH_DETAILS, **details}


def test_architecture_identical(pair):
    """Same layers, wiring, configs, counts and compiled record: identical, said in one line."""
    assert_arch(run_stage("architecture", *pair()), "identical", None,
                "4 layers, wiring and configs identical, 62 parameters; compiled with the same Adam and function")


def test_architecture_layers_pair_by_place_not_name(pair):
    """conv named conv2d_1 by the candidate (Keras's auto-name), its wiring the same: identical, the names
    reported."""
    def rename(a):
        a["layers"][1]["name"] = "conv2d_1"
        a["layers"][2]["inputs"] = ["input", "conv2d_1"]
    assert_arch(run_stage("architecture", *pair(_arch(rename))), "identical", None,
                "4 layers, wiring and configs identical, 62 parameters; compiled with the same Adam and function; "
                "1 layers named differently (first: layer 2 conv vs conv2d_1)",
                renamed=[{"layer": 2, "python": "conv", "r-test": "conv2d_1"}])


def test_architecture_a_layer_of_another_class(pair):
    """A layer of another class at the same place: its place, both names and classes."""
    assert_arch(run_stage("architecture", *pair(_arch(lambda a: a["layers"][1].update(class_name="Dense")))),
                "differs", "conv", "layer 2: conv (Conv2D) vs conv (Dense)")


@pytest.mark.parametrize("side, owner", [("cand", "r-test"), ("ref", "python")])
def test_architecture_a_layer_only_one_worker_has(pair, side, owner):
    """An extra layer at the end, in either worker: its place, name, class and owner."""
    extra = _arch(lambda a: a["layers"].append({"name": "extra", "class_name": "Dense", "config": {},
                                                "inputs": ["output"], "params": 0}))
    ref, cand = pair(extra) if side == "cand" else pair(None, extra)
    assert_arch(run_stage("architecture", ref, cand), "differs", "extra",
                f"layer 5 (extra, Dense) exists only in {owner}", layers=5 if side == "ref" else 4)


def test_architecture_swapped_inputs_of_a_concatenate(pair):
    """A Concatenate with its inputs swapped: the layer, both input lists and their places."""
    r = run_stage("architecture", *pair(_arch(lambda a: a["layers"][2].update(inputs=["conv", "input"]))))
    assert_arch(r, "differs", "concat",
                "layer 3 concat: inputs ['input', 'conv'] vs ['conv', 'input'] (layers [1, 2] vs [2, 1])",
                inputs={"python": ["input", "conv"], "r-test": ["conv", "input"]})


def test_architecture_an_input_that_is_no_layer(pair):
    """An input naming no layer counts as no place: listed as given, left out of the places."""
    r = run_stage("architecture", *pair(_arch(lambda a: a["layers"][3].update(inputs=["nowhere"]))))
    assert_arch(r, "differs", "output", "layer 4 output: inputs ['concat'] vs ['nowhere'] (layers [3] vs [])",
                inputs={"python": ["concat"], "r-test": ["nowhere"]})


def test_architecture_config_values_and_their_types(pair):
    """A filter count of 2.0 (an R double) is not 2; an absent key shows as null; at most 4 keys are listed."""
    r = run_stage("architecture", *pair(_arch(lambda a: a["layers"][1]["config"].update(filters=2.0))))
    assert_arch(r, "differs", "conv", "layer conv: filters: 2 vs 2.0", config_keys=["filters"])
    r = run_stage("architecture", *pair(_arch(lambda a: a["layers"][1]["config"].pop("kernel_size"))))
    assert_arch(r, "differs", "conv", "layer conv: kernel_size: [3, 3] vs null", config_keys=["kernel_size"])
    r = run_stage("architecture", *pair(_arch(lambda a: a["layers"][1]["config"].update(kernel_size=None))))
    assert r["summary"] == "layer conv: kernel_size: [3, 3] vs null"  # null written, not absent: also a change
    many = _arch(lambda a: a["layers"][1].update(config={k: 1 for k in "abcde"}))
    assert_arch(run_stage("architecture", *pair(many)), "differs", "conv",
                "layer conv: a: null vs 1; b: null vs 1; c: null vs 1; d: null vs 1",
                config_keys=["a", "b", "c", "d", "e", "filters", "kernel_size"])
    one_null = _arch(lambda a: a["layers"][1]["config"].update(extra=None))
    assert run_stage("architecture", *pair(one_null))["summary"] == "layer conv: extra: null vs null"
    assert run_stage("architecture", *pair(None, one_null))["summary"] == "layer conv: extra: null vs null"
    nulls = _arch(lambda a: a["layers"][1]["config"].update(extra=None))
    assert_arch(run_stage("architecture", *pair(nulls, nulls)), "identical", None,
                "4 layers, wiring and configs identical, 62 parameters; compiled with the same Adam and function")


def test_architecture_parameter_counts(pair):
    """A layer's parameter count, then the total; the trainable count is reported, not compared."""
    assert_arch(run_stage("architecture", *pair(_arch(lambda a: a["layers"][1].update(params=57)))),
                "differs", "conv", "layer conv: 56 vs 57 parameters")
    assert_arch(run_stage("architecture", *pair(_arch(lambda a: a.update(total_params=63)))),
                "differs", None, "total parameters 62 vs 63", total_params={"python": 62, "r-test": 63})
    r = run_stage("architecture", *pair(_arch(lambda a: a.update(trainable_params=0))))
    assert r["verdict"] == "identical" and r["details"]["trainable_params"] == {"python": 62, "r-test": 0}


def test_architecture_then_the_compiled_optimizer_and_loss(pair):
    """After the layers, the compiled record: its first difference, or which worker did not write it."""
    def lr(c):
        c["optimizer"]["config"]["learning_rate"] = 0.002
    assert_arch(run_stage("architecture", *pair(changed("compiled.json", lr))), "differs", "optimizer",
                "optimizer Adam learning_rate 0.001 vs 0.002")
    r = run_stage("architecture", *pair(changed("compiled.json", lambda c: c.update(run_eagerly=True))))
    assert (r["location"], r["summary"]) == ("compile", "compile run_eagerly false vs true")
    r = run_stage("architecture", *pair({"compiled.json": None}))
    assert (r["stage"], r["verdict"], r["summary"]) == ("architecture", "missing",
                                                        "compiled.json not written by r-test")
    r = run_stage("architecture", *pair(None, {"compiled.json": None}))
    assert r["summary"] == "compiled.json not written by python"
    r = run_stage("architecture", *pair({"architecture.json": None}, {"architecture.json": None}))
    assert (r["verdict"], r["summary"]) == ("missing", "architecture.json not written by python, r-test")
    r = run_stage("architecture", *pair({"architecture.json": None}))
    assert (r["stage"], r["verdict"], r["summary"]) == ("architecture", "missing",
                                                        "architecture.json not written by r-test")
    r = run_stage("architecture", *pair(None, {"architecture.json": None}))
    assert (r["stage"], r["summary"]) == ("architecture", "architecture.json not written by python")


def test_architecture_without_layers(pair):
    """A record without a layer list is an empty model: equal to another empty one, short of a real one."""
    empty = {"architecture.json": {"total_params": 0, "trainable_params": 0}}
    r = run_stage("architecture", *pair(empty, empty))
    assert r["verdict"] == "identical" and r["summary"].startswith("0 layers, wiring and configs identical, 0 ")
    r = run_stage("architecture", *pair(empty))
    assert (r["verdict"], r["location"]) == ("differs", "input")
    assert r["summary"] == "layer 1 (input, InputLayer) exists only in python"


@pytest.mark.parametrize("edit, line", [
    (lambda c: c["optimizer"].update(class_name="RMSprop"), "optimizer Adam vs RMSprop"),
    (lambda c: c["optimizer"]["config"].update(beta_1=1), "optimizer Adam beta_1 0.9 vs 1"),
    (lambda c: c["optimizer"]["config"].pop("beta_1"), 'optimizer Adam beta_1 0.9 vs "<absent>"'),
    (lambda c: c["optimizer"]["config"].update(amsgrad=True), 'optimizer Adam amsgrad "<absent>" vs true'),
    (lambda c: c["loss"]["config"].update(function="bce"), 'loss function function "bce_dice" vs "bce"'),
    (lambda c: c["loss"].update(class_name="BinaryCrossentropy"), "loss function vs BinaryCrossentropy"),
    (lambda c: c.update(jit_compile=True), "compile jit_compile false vs true"),
    (lambda c: c.pop("run_eagerly"), "compile run_eagerly false vs null"),
    (lambda c: c.update(steps_per_execution=4), "compile steps_per_execution 1 vs 4"),
    (lambda c: c.update(optimizer=None), "optimizer Adam vs None"),
])
def test_compare_compiled(edit, line):
    """The first difference of two compiled.json records: class, then config (values and their types), then the
    compile flags; floats in 6 significant digits."""
    a = base_files("x")["compiled.json"]
    b = changed("compiled.json", edit)["compiled.json"]
    assert stages.compare_compiled(a, b) == line
    assert stages.compare_compiled(a, json.loads(json.dumps(a))) is None


def test_compare_compiled_absent_is_not_null_and_only_class_and_config_count():
    """A flag one record lacks and the other holds as null differs; an optimizer or loss differs only by its
    class and config (what compiled.json records of them)."""
    a = base_files("x")["compiled.json"]
    b = dict(a, steps_per_execution=None)
    del a["steps_per_execution"]
    assert stages.compare_compiled(a, b) == "compile steps_per_execution null vs null"
    assert stages.compare_compiled(b, a) == "compile steps_per_execution null vs null"
    c = dict(a, optimizer=dict(a["optimizer"], name="adam_1"), loss=dict(a["loss"], reduction="sum"))
    assert stages.compare_compiled(a, c) is None


def test_compare_compiled_sees_a_type_change_of_equal_values():
    """0 and 0.0 are equal values of other types: a difference; _show writes floats in 6 digits, the rest as JSON."""
    a = {"optimizer": {"class_name": "SGD", "config": {"momentum": 0}}, "loss": {}}
    b = {"optimizer": {"class_name": "SGD", "config": {"momentum": 0.0}}, "loss": {}}
    assert stages.compare_compiled(a, b) == "optimizer SGD momentum 0 vs 0"
    assert stages._show(0.0010000000474974513) == "0.001" and stages._show("x") == '"x"'
    assert stages._show(True) == "true" and stages._show(None) == "null" and stages._show(3) == "3"


# ---------------------------------------------------------------------------------------------- weights

def _bias_up(filename="weights_final.npz"):
    """conv/bias one ULP up in its first value (final: 0.5 -> 0.5 + 2^-24)."""
    def edit(w):
        w["conv/bias"] = w["conv/bias"].copy()
        w["conv/bias"][0] = one_ulp_up(w["conv/bias"][0])
    return changed(filename, edit)


BIAS_ULP = 2.0 ** -24                             # 0.5 -> its next float32
BIAS_REL = f"{BIAS_ULP / math.hypot(0.5, 0.25):.3g}"  # over |(0.5, -0.25)|


@pytest.mark.parametrize("stage, filename", [("initial_weights", "weights_initial.npz"),
                                             ("final_weights", "weights_final.npz")])
def test_weights_identical(pair, stage, filename):
    """Bit-identical archives: identical, every variable listed in model order; a missing archive is named."""
    r = run_stage(stage, *pair())
    assert (r["verdict"], r["location"], r["summary"]) == ("identical", None, "4 variables, all bit-identical")
    assert [v["variable"] for v in r["details"]["variables"]] == ["conv/kernel", "conv/bias", "output/kernel",
                                                                   "output/bias"]
    assert (r["details"]["max_ulp_diff"], r["details"]["max_abs_diff"]) == (0, 0.0)
    r = run_stage(stage, *pair({filename: None}))
    assert (r["stage"], r["verdict"], r["summary"]) == (stage, "missing", f"{filename} not written by r-test")
    r = run_stage(stage, *pair(None, {filename: None}))
    assert (r["stage"], r["verdict"], r["summary"]) == (stage, "missing", f"{filename} not written by python")


def test_weights_one_ulp_in_one_variable_strict(pair):
    """Strict: 1 ULP in conv/bias is named with its ULP, max abs and relative L2; the stage's tolerance is in the
    details."""
    r = run_stage("final_weights", *pair(_bias_up()))
    assert (r["verdict"], r["ok"], r["location"]) == ("differs", False, "conv/bias")
    assert r["summary"] == (f"1 of 4 variables differ; first conv/bias: max ulp 1, max abs {BIAS_ULP:.3g}, "
                            f"rel L2 {BIAS_REL}")
    assert (r["details"]["max_ulp_diff"], r["details"]["max_abs_diff"]) == (1, BIAS_ULP)
    assert (r["details"]["rtol"], r["details"]["atol"]) == (1e-3, 1e-3)  # the stage's, shown in every mode
    assert [v["verdict"] for v in r["details"]["variables"]] == ["identical", "differs", "identical", "identical"]


@pytest.mark.parametrize("stage, filename, tol", [("initial_weights", "weights_initial.npz", "1e-06"),
                                                  ("final_weights", "weights_final.npz", "0.001")])
def test_weights_one_ulp_is_within_tolerance(pair, stage, filename, tol):
    """Tolerance mode: 1 ULP is within each weight stage's own tolerance, counted in the summary."""
    r = run_stage(stage, *pair(_bias_up(filename)), mode="tolerance")
    assert (r["verdict"], r["ok"], r["location"]) == ("within_tolerance", True, None)
    assert r["summary"] == f"4 variables, 1 differ within rtol {tol} atol {tol} (max ulp 1)"


def test_weights_beyond_tolerance_and_a_tolerance_given(pair):
    """0.5 -> 0.5 + 2^-9 is beyond rtol = atol = 1e-3 of final_weights, within an atol of 0.01 given for it."""
    far = changed("weights_final.npz", lambda w: w.update({"conv/bias": np.float32([0.5 + 2 ** -9, -0.25])}))
    r = run_stage("final_weights", *pair(far), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "conv/bias")
    assert r["summary"].startswith("1 of 4 variables differ; first conv/bias: max ulp 32768, max abs 0.00195")
    r = run_stage("final_weights", *pair(far), mode="tolerance", tolerances={"final_weights": (0.0, 0.01)})
    assert r["verdict"] == "within_tolerance" and (r["details"]["rtol"], r["details"]["atol"]) == (0.0, 0.01)
    r = run_stage("final_weights", *pair(far), mode="strict", tolerances={"final_weights": (0.0, 0.01)})
    assert r["verdict"] == "differs"  # strict ignores tolerances


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered")
def test_weights_nan(pair):
    """NaN in the same place in both is identical; NaN against a number differs, in every mode."""
    nan = changed("weights_final.npz", lambda w: w.update({"output/bias": np.float32([np.nan])}))
    r = run_stage("final_weights", *pair(nan, nan), mode="strict")
    assert r["verdict"] == "identical"
    r = run_stage("final_weights", *pair(nan), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "output/bias")


def test_weights_a_shape_change(pair):
    """A variable of another shape differs in every mode, with both shapes."""
    wide = changed("weights_final.npz", lambda w: w.update({"conv/bias": np.float32([0.5, -0.25, 0.0])}))
    for mode in ("strict", "tolerance"):
        r = run_stage("final_weights", *pair(wide), mode=mode)
        assert (r["verdict"], r["location"]) == ("differs", "conv/bias")
        assert r["summary"] == "variable conv/bias: shape [2] vs [3]"
        assert r["details"]["variables"][1]["shape_b"] == [3] and r["details"]["max_ulp_diff"] == 0


def test_weights_a_variable_only_one_worker_has(pair):
    """A variable one worker lacks, or one it has beyond the other's: named with the worker without it."""
    r = run_stage("final_weights", *pair(changed("weights_final.npz", lambda w: w.pop("output/bias"))))
    assert (r["verdict"], r["location"], r["summary"]) == (
        "differs", "output/bias", "variable output/bias missing in r-test")
    assert r["details"]["variables"][-1] == {"variable": "output/bias", "identical": False, "verdict": "missing",
                                             "missing_in": "r-test"}
    assert (r["details"]["rtol"], r["details"]["atol"]) == (1e-3, 1e-3)
    extra = changed("weights_final.npz", lambda w: w.update({"extra/bias": np.float32([1.0])}))
    r = run_stage("final_weights", *pair(extra), mode="tolerance")
    assert (r["verdict"], r["summary"]) == ("differs", "variable extra/bias missing in python")


def test_weights_pair_by_place_when_both_have_as_many(pair):
    """The candidate's variables under other layer names, in the same order: paired by place and labelled with
    both names; a variable list of another length pairs by name."""
    def rename(w):
        renamed = {k.replace("conv/", "conv2d_1/"): v for k, v in w.items()}
        renamed["conv2d_1/bias"] = np.float32([ULP_ABOVE_HALF, -0.25])
        w.clear()
        w.update(renamed)
    r = run_stage("final_weights", *pair(changed("weights_final.npz", rename)))
    assert (r["verdict"], r["location"]) == ("differs", "conv/bias (r-test: conv2d_1/bias)")
    assert [v["variable"] for v in r["details"]["variables"]] == [
        "conv/kernel (r-test: conv2d_1/kernel)", "conv/bias (r-test: conv2d_1/bias)", "output/kernel",
        "output/bias"]
    assert r["summary"].startswith("1 of 4 variables differ; first conv/bias (r-test: conv2d_1/bias): max ulp 1")


def test_weights_of_no_variables(pair):
    """Two empty archives (a model without weights): identical, worst differences 0."""
    r = run_stage("initial_weights", *pair({"weights_initial.npz": {}}, {"weights_initial.npz": {}}))
    assert (r["verdict"], r["summary"]) == ("identical", "0 variables, all bit-identical")
    assert (r["details"]["max_ulp_diff"], r["details"]["max_abs_diff"], r["details"]["variables"]) == (0, 0.0, [])


def test_weights_name_the_first_differing_variable_and_the_worst(pair):
    """Two variables differ: the first in model order is named; details carry the largest ULP and abs over all."""
    def edit(w):
        w["conv/bias"] = np.float32([ULP_ABOVE_HALF, -0.25])
        w["output/bias"] = np.float32([0.25])
    r = run_stage("final_weights", *pair(changed("weights_final.npz", edit)))
    assert r["location"] == "conv/bias" and r["summary"].startswith("2 of 4 variables differ; first conv/bias")
    assert (r["details"]["max_ulp_diff"], r["details"]["max_abs_diff"]) == (2 ** 23, 0.125)


# ---------------------------------------------------------------------------------------------- batch losses

def test_batch_losses_identical(pair):
    """Equal losses: identical, with their count; a missing file is named."""
    r = run_stage("batch_losses", *pair())
    assert (r["verdict"], r["summary"], r["location"]) == ("identical", "6 batch losses bit-identical", None)
    assert (r["details"]["shape"], r["details"]["n_differ"]) == ([2, 3], 0)
    r = run_stage("batch_losses", *pair({"batch_losses.npy": None}))
    assert (r["verdict"], r["summary"]) == ("missing", "batch_losses.npy not written by r-test")


def test_batch_losses_name_the_first_differing_step(pair):
    """Epoch 2 batch 2 (0.375) one ULP up: named with both values as float32 print them, and its ULP."""
    up = changed("batch_losses.npy", lambda a: a.__setitem__((1, 1), one_ulp_up(a[1, 1])))
    r = run_stage("batch_losses", *pair(up))
    assert (r["verdict"], r["location"]) == ("differs", "epoch 2 batch 2")
    assert r["summary"] == "epoch 2 batch 2: 0.375 vs 0.37500003 (1 ulp); max abs 2.98e-08"
    assert (r["details"]["epoch"], r["details"]["batch"], r["details"]["n_differ"]) == (2, 2, 1)


def test_batch_losses_tolerance(pair):
    """1 ULP is within rtol 1e-3; with one step beyond it, that step is named, not the first step that differs."""
    def edit(a):
        a[0, 1] = one_ulp_up(a[0, 1])
        a[1, 2] = 0.5
    up = changed("batch_losses.npy", lambda a: a.__setitem__((0, 1), one_ulp_up(a[0, 1])))
    r = run_stage("batch_losses", *pair(up), mode="tolerance")
    assert (r["verdict"], r["summary"]) == ("within_tolerance", "max abs 5.96e-08 within rtol 0.001")
    assert r["details"]["n_differ"] == 1 and r["details"]["max_ulp_diff"] == 1
    r = run_stage("batch_losses", *pair(changed("batch_losses.npy", edit)), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "epoch 2 batch 3")
    assert r["summary"].startswith("epoch 2 batch 3: 0.25 vs 0.5 (")
    r = run_stage("batch_losses", *pair(changed("batch_losses.npy", edit)), mode="strict")
    assert r["location"] == "epoch 1 batch 2"


def test_batch_losses_tolerance_names_the_first_step_beyond_rtol_or_atol(pair):
    """Tolerance mode names the first step beyond |a - b| <= atol + rtol * |b|, with the tolerances given."""
    ref_files = {"batch_losses.npy": np.float32([[1.0, 1.0]])}
    cand_files = {"batch_losses.npy": np.float32([[1.25, 3.0]])}
    for tolerance in ((0.5, 0.0), (0.0, 0.5)):
        r = run_stage("batch_losses", *pair(cand_files, ref_files), mode="tolerance",
                      tolerances={"batch_losses": tolerance})
        assert (r["verdict"], r["location"]) == ("differs", "epoch 1 batch 2"), tolerance
        assert r["summary"] == "epoch 1 batch 2: 1.0 vs 3.0 (12582912 ulp); max abs 2"  # 2^23 + 2^22
        assert (r["details"]["epoch"], r["details"]["batch"], r["details"]["n_differ"]) == (1, 2, 2)


def test_batch_losses_a_shape_change(pair):
    """Another number of epochs or batches differs in every mode, with both shapes."""
    more = {"batch_losses.npy": np.float32([[0.75, 0.5, 0.625], [0.5, 0.375, 0.25], [0.25, 0.25, 0.25]])}
    for mode in ("strict", "tolerance"):
        r = run_stage("batch_losses", *pair(more), mode=mode)
        assert (r["verdict"], r["location"]) == ("differs", "shape")
        assert r["summary"] == "shape [2, 3] vs [3, 3] (epochs, batches)"
        assert (r["details"]["shape_a"], r["details"]["shape_b"]) == ([2, 3], [3, 3])


def test_batch_losses_nan(pair):
    """A NaN loss in both is identical; against a number it differs, at its epoch and batch."""
    nan = changed("batch_losses.npy", lambda a: a.__setitem__((1, 0), np.nan))
    assert run_stage("batch_losses", *pair(nan, nan))["verdict"] == "identical"
    r = run_stage("batch_losses", *pair(nan), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "epoch 2 batch 1")


# ---------------------------------------------------------------------------------------------- predictions

def test_predictions_identical(pair):
    """Equal predictions: bit-identical, no pixel changes class; a missing file is named."""
    r = run_stage("predictions", *pair())
    assert (r["verdict"], r["location"]) == ("identical", None)
    assert r["summary"] == "bit-identical; 2 val tiles; max abs 0, 0.0000% of pixels change class"
    assert r["details"]["class_differ_share"] == 0.0 and r["details"]["class_differ_per_tile"] == [0.0, 0.0]
    r = run_stage("predictions", *pair({"predictions_val.npy": None}))
    assert (r["verdict"], r["summary"]) == ("missing", "predictions_val.npy not written by r-test")


def test_predictions_name_the_val_tile_by_its_id(pair):
    """The second val tile one ULP off: strict names it by the manifest's tile id, or by its place without one."""
    up = changed("predictions_val.npy", lambda a: a.__setitem__((1, 2, 3), one_ulp_up(a[1, 2, 3])))
    r = run_stage("predictions", *pair(up), manifest={"val": [7, 9]})
    assert (r["verdict"], r["location"]) == ("differs", "val tile 9")
    assert r["summary"].startswith("2 val tiles; max abs ") and r["summary"].endswith(
        ", 0.0000% of pixels change class")
    assert run_stage("predictions", *pair(up))["location"] == "val tile 1"
    r = run_stage("predictions", *pair(up), mode="tolerance", manifest={"val": [7, 9]})
    assert (r["verdict"], r["location"]) == ("within_tolerance", None)


def test_predictions_that_change_class_differ_even_within_tolerance(pair):
    """0.5 vs its next float32 is within rtol 1e-3 but crosses the class threshold (0.5): 1 of 32 pixels."""
    def edit(a):
        a[0, 0, 0] = ULP_ABOVE_HALF
    r = run_stage("predictions", *pair(changed("predictions_val.npy", edit),
                                       changed("predictions_val.npy", lambda a: a.__setitem__((0, 0, 0), 0.5))),
                  mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "val tile 0")
    assert r["details"]["class_differ_share"] == 1 / 32
    assert r["details"]["class_differ_per_tile"] == [1 / 16, 0.0]
    assert r["summary"].endswith("3.1250% of pixels change class")


def test_predictions_class_threshold_comes_from_the_rules(pair):
    """The same 1-ULP change at 0.25 crosses a class_threshold of 0.25 (the run's rules), not the default 0.5."""
    ref_files = changed("predictions_val.npy", lambda a: a.__setitem__((0, 0, 0), 0.25))
    cand_files = changed("predictions_val.npy", lambda a: a.__setitem__((0, 0, 0), one_ulp_up(np.float32(0.25))))
    r = run_stage("predictions", *pair(cand_files, ref_files), mode="tolerance", rules={"class_threshold": 0.25})
    assert r["verdict"] == "differs" and r["details"]["class_differ_share"] == 1 / 32
    r = run_stage("predictions", *pair(cand_files, ref_files), mode="tolerance")
    assert r["verdict"] == "within_tolerance" and r["details"]["class_differ_share"] == 0.0


@pytest.mark.parametrize("flips, verdict", [(1, "within_tolerance"), (2, "differs")])
def test_predictions_class_share_limit_is_one_in_a_thousand(tmp_path, flips, verdict):
    """1 pixel of 1000 changing class is within tolerance (the limit, 1e-3, included); 2 are not."""
    a = np.full((1, 10, 100), 0.2, np.float32)
    a.flat[:flips] = 0.5
    b = a.copy()
    b.flat[:flips] = ULP_ABOVE_HALF
    ref = write_worker(tmp_path / "a", "python", {"predictions_val.npy": a})
    cand = write_worker(tmp_path / "b", "r-test", {"predictions_val.npy": b})
    r = run_stage("predictions", ref, cand, mode="tolerance")
    assert r["verdict"] == verdict and r["details"]["class_differ_share"] == flips / 1000


def test_predictions_on_the_threshold_and_of_other_layouts(tmp_path):
    """A probability equal to the class threshold is background in both; no pixels change no class; a (tiles,
    pixels) layout counts per tile, a flat one has no tiles to count; a manifest with fewer ids than tiles names
    the place."""
    def run(a, b, **kw):
        ref = write_worker(tmp_path / f"a{run.k}", "python", {"predictions_val.npy": np.float32(a)})
        cand = write_worker(tmp_path / f"b{run.k}", "r-test", {"predictions_val.npy": np.float32(b)})
        run.k += 1
        return run_stage("predictions", ref, cand, **kw)
    run.k = 0
    r = run([[0.5, 0.2]], [[0.5, 0.2]])
    assert r["details"]["class_differ_share"] == 0.0 and r["details"]["class_differ_per_tile"] == [0.0]
    r = run(np.zeros(0), np.zeros(0))
    assert (r["verdict"], r["details"]["class_differ_share"], r["details"]["class_differ_per_tile"]) == (
        "identical", 0.0, [])
    r = run([[0.2, 0.8], [0.2, 0.2]], [[0.2, 0.8], [0.8, 0.2]], mode="tolerance")
    assert r["details"]["class_differ_per_tile"] == [0.0, 0.5] and r["details"]["class_differ_share"] == 0.25
    r = run([0.2, 0.8], [0.2, 0.2])
    assert r["details"]["class_differ_per_tile"] == [] and r["details"]["class_differ_share"] == 0.5
    r = run([[0.2], [0.2]], [[0.2], [0.3]], manifest={"val": [7]})
    assert r["location"] == "val tile 1"


def test_predictions_a_shape_change(pair):
    """Another number of val tiles differs in every mode, with both shapes."""
    r = run_stage("predictions", *pair({"predictions_val.npy": np.zeros((3, 4, 4), np.float32)}), mode="tolerance")
    assert (r["verdict"], r["location"], r["summary"]) == ("differs", "shape", "shape [2, 4, 4] vs [3, 4, 4]")
    assert r["details"]["shape_b"] == [3, 4, 4]


# ---------------------------------------------------------------------------------------------- metrics

def _metric(epoch, split, key, value):
    def edit(m):
        block = m["final"] if epoch == "final" else m["epochs"][epoch - 1]
        block[split][key] = value
    return changed("metrics.json", edit)


def test_metrics_identical(pair):
    """Equal metrics: identical, with the epoch count; a missing file is named."""
    r = run_stage("metrics", *pair())
    assert (r["verdict"], r["summary"], r["location"]) == ("identical", "2 epochs, train and val metrics identical",
                                                           None)
    assert r["details"] == {"epochs": 2, "max_abs_diff": 0.0}
    r = run_stage("metrics", *pair({"metrics.json": None}))
    assert (r["verdict"], r["summary"]) == ("missing", "metrics.json not written by r-test")


def test_metrics_strict_names_epoch_split_and_metric(pair):
    """Strict: the first differing value, by epoch, split and metric, with both values."""
    r = run_stage("metrics", *pair(_metric(2, "val", "iou", 0.5000001)))
    assert (r["verdict"], r["location"]) == ("differs", "epoch 2 val iou")
    assert r["summary"] == "epoch 2 val iou: 0.5 vs 0.5000001"
    assert r["details"]["epoch"] == 2 and r["details"]["max_abs_diff"] == pytest.approx(1e-7)


def test_metrics_tolerance(pair):
    """Tolerance mode: within rtol = atol = 1e-3 (or the tolerance given) passes, beyond it is named."""
    r = run_stage("metrics", *pair(_metric(2, "val", "iou", 0.5000001)), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("within_tolerance", None)
    assert r["summary"] == "2 epochs, train and val metrics within rtol 0.001 (max abs 1e-07)"
    r = run_stage("metrics", *pair(_metric(1, "train", "loss", 0.71)), mode="tolerance")
    assert (r["verdict"], r["summary"]) == ("differs", "epoch 1 train loss: 0.7 vs 0.71")
    r = run_stage("metrics", *pair(_metric(1, "train", "loss", 0.71)), mode="tolerance",
                  tolerances={"metrics": (0.0, 0.1)})
    assert r["verdict"] == "within_tolerance"


def test_metrics_first_in_epoch_split_key_order(pair):
    """Epochs in order, train before val, keys sorted; the final block after the epochs; counts compared too."""
    def edit(m):
        m["epochs"][1]["train"]["loss"] = 0.9
        m["epochs"][1]["val"]["accuracy"] = 0.1
        m["epochs"][0]["val"]["tp"] = 4
        m["final"]["train"]["f1"] = 0.1
    r = run_stage("metrics", *pair(changed("metrics.json", edit)))
    assert r["location"] == "epoch 1 val tp" and r["summary"] == "epoch 1 val tp: 3 vs 4"
    r = run_stage("metrics", *pair(_metric("final", "train", "recall", 0.5)), mode="tolerance")
    assert (r["verdict"], r["location"]) == ("differs", "epoch final train recall")
    assert r["details"]["epoch"] == "final"


def test_metrics_an_undefined_value_differs_in_every_mode(pair):
    """precision None (no pixel predicted as tailings) against a number; a metric only one worker wrote."""
    for mode in ("strict", "tolerance"):
        r = run_stage("metrics", *pair(_metric(1, "val", "precision", None)), mode=mode)
        assert (r["verdict"], r["summary"]) == ("differs", "epoch 1 val precision: 0.6 vs None")
    r = run_stage("metrics", *pair(_metric(2, "val", "extra", 1.0)), mode="tolerance")
    assert r["summary"] == "epoch 2 val extra: None vs 1.0"


def test_metrics_a_split_or_the_epochs_one_worker_did_not_write(pair):
    """A split missing in one worker's epoch: its metrics against None; no epochs in either: the final block."""
    r = run_stage("metrics", *pair(changed("metrics.json", lambda m: m["epochs"][0].pop("train"))))
    assert r["summary"] == "epoch 1 train loss: 0.7 vs None"
    r = run_stage("metrics", *pair(None, changed("metrics.json", lambda m: m["epochs"][0].pop("train"))))
    assert r["summary"] == "epoch 1 train loss: None vs 0.7"
    final_only = changed("metrics.json", lambda m: m.pop("epochs"))
    r = run_stage("metrics", *pair(final_only, final_only))
    assert (r["verdict"], r["summary"]) == ("identical", "0 epochs, train and val metrics identical")


def test_metrics_rtol_counts_as_well_as_atol(pair):
    """Tolerance mode: a difference within rtol * |value| passes although beyond atol."""
    big = _metric(1, "val", "loss", 10.0)
    r = run_stage("metrics", *pair(_metric(1, "val", "loss", 10.5), big), mode="tolerance",
                  tolerances={"metrics": (0.1, 0.0)})
    assert r["verdict"] == "within_tolerance"


def test_metrics_a_different_number_of_epochs(pair):
    """Another number of epochs differs before any value is compared."""
    r = run_stage("metrics", *pair(changed("metrics.json", lambda m: m["epochs"].pop())))
    assert (r["verdict"], r["location"], r["summary"]) == ("differs", "epochs", "2 vs 1 epochs")


def test_metrics_the_largest_difference_is_reported(pair):
    """The details carry the largest difference over every epoch, not the first."""
    def edit(m):
        m["epochs"][0]["val"]["loss"] = 0.6100002
        m["epochs"][1]["val"]["loss"] = 0.6000005
    r = run_stage("metrics", *pair(changed("metrics.json", edit)), mode="tolerance")
    assert r["verdict"] == "within_tolerance" and r["details"]["max_abs_diff"] == pytest.approx(5e-7)


# ---------------------------------------------------------------------------------------------- saved models

def test_saved_models_identical(pair):
    """Each model loaded by each language predicts what its worker did: 4 bit-identical cross-loads."""
    r = run_stage("saved_models", *pair())
    assert (r["verdict"], r["location"]) == ("identical", None)
    assert r["summary"] == "4 cross-loads predict the fixed batch bit-identically"
    assert [(x["model"], x["loader"], x["verdict"]) for x in r["details"]["loads"]] == [
        ("python", "python", "identical"), ("python", "r", "identical"),
        ("r-test", "python", "identical"), ("r-test", "r", "identical")]


def test_saved_models_one_ulp(pair):
    """The candidate's model loaded in R predicts 1 ULP off what the candidate predicted itself."""
    off = changed("crossload_r.npy", lambda a: a.__setitem__((0, 0, 0), one_ulp_up(a[0, 0, 0])))
    r = run_stage("saved_models", *pair(off))
    assert (r["verdict"], r["location"]) == ("differs", "r-test in r")
    assert r["summary"].startswith("model of r-test loaded in r: max ulp 1, max abs ")
    r = run_stage("saved_models", *pair(off), mode="tolerance")
    assert (r["verdict"], r["summary"]) == ("within_tolerance",
                                            "4 cross-loads predict the fixed batch within tolerance")


def test_saved_models_summary_and_details_of_a_difference(pair):
    off = changed("crossload_r.npy", lambda a: a.__setitem__((0, 0, 0), one_ulp_up(a[0, 0, 0])))
    r = run_stage("saved_models", *pair(off))
    assert r["summary"] == "model of r-test loaded in r: max ulp 1, max abs 5.96e-08"
    assert [(x["model"], x["loader"], x["ok"], x["verdict"]) for x in r["details"]["loads"]] == [
        ("python", "python", True, "identical"), ("python", "r", True, "identical"),
        ("r-test", "python", True, "identical"), ("r-test", "r", True, "differs")]
    no_self = changed("crossload.json", lambda c: c.pop("self"))
    r = run_stage("saved_models", *pair(no_self))
    assert r["summary"] == "model of r-test loaded in python: the saving worker's own prediction is missing"
    assert r["details"]["loads"][2]["ok"] is True and r["details"]["loads"][2]["verdict"] == "differs"


def test_saved_models_a_loader_that_failed(pair):
    """A loader that failed, a worker without its own prediction, a missing crossload.json: each named."""
    failed = changed("crossload.json", lambda c: c.update(python={"ok": False, "error": "ValueError: bad",
                                                                  "file": None}))
    r = run_stage("saved_models", *pair(None, failed), mode="tolerance")
    assert (r["verdict"], r["location"], r["summary"]) == (
        "differs", "python in python", "model of python loaded in python: ValueError: bad")
    no_self = changed("crossload.json", lambda c: c.update(self={"ok": False, "error": "x", "file": None}))
    r = run_stage("saved_models", *pair(no_self))
    assert r["summary"] == "model of r-test loaded in python: the saving worker's own prediction is missing"
    r = run_stage("saved_models", *pair({"crossload.json": None}))
    assert (r["verdict"], r["summary"]) == ("missing", "crossload.json not written by r-test")


# ---------------------------------------------------------------------------------------------- a pair

def test_compare_pair_identical(pair):
    """Two equal workers: every stage identical, no divergence."""
    ref, cand = pair()
    got = stages.compare_pair(ref, cand, "strict", stages_to_check=PINNED)
    assert (got["reference"], got["candidate"], got["mode"], got["ok"], got["first_divergence"]) == (
        "python", "r-test", "strict", True, None)
    assert [(s["stage"], s["verdict"]) for s in got["stages"]] == [(s, "identical") for s in PINNED]


def test_compare_pair_refuses_an_unknown_mode(pair):
    """A mode other than strict, tolerance or statistical is an error naming the modes."""
    with pytest.raises(CompareError) as err:
        stages.compare_pair(*pair(), "fast")
    assert str(err.value) == "unknown mode 'fast'; modes: strict, tolerance, statistical"


def test_compare_pair_names_the_earliest_divergence(pair):
    """final_weights (1 ULP) and metrics both differ: the first in data-flow order is the divergence."""
    files = {**_bias_up(), **_metric(2, "val", "iou", 0.25)}
    got = stages.compare_pair(*pair(files), "strict", stages_to_check=PINNED)
    assert not got["ok"]
    assert got["first_divergence"] == {"stage": "final_weights", "location": "conv/bias", "verdict": "differs",
                                       "summary": f"1 of 4 variables differ; first conv/bias: max ulp 1, max abs "
                                                  f"{BIAS_ULP:.3g}, rel L2 {BIAS_REL}"}
    verdicts = {s["stage"]: s["verdict"] for s in got["stages"]}
    assert verdicts["metrics"] == "differs" and verdicts["batch_losses"] == "identical"


def test_compare_pair_modes_and_tolerances(pair):
    """Tolerance and statistical modes accept 1 ULP; a tolerance given replaces the stage's default."""
    ref, cand = pair(_bias_up())
    for mode in ("tolerance", "statistical"):
        got = stages.compare_pair(ref, cand, mode, stages_to_check=["final_weights"])
        assert got["ok"] and got["mode"] == mode and got["stages"][0]["verdict"] == "within_tolerance"
    got = stages.compare_pair(ref, cand, "tolerance", tolerances={"final_weights": (0.0, 0.0)},
                              stages_to_check=["final_weights"])
    assert got["first_divergence"]["stage"] == "final_weights"


def test_compare_pair_a_missing_required_file_fails_its_stage_in_every_mode(pair):
    """A required file not written fails its stage as missing in every mode, never a pass."""
    ref, cand = pair({"weights_final.npz": None})
    for mode in stages.MODES:
        got = stages.compare_pair(ref, cand, mode, stages_to_check=PINNED)
        st = {s["stage"]: s for s in got["stages"]}["final_weights"]
        assert (st["verdict"], st["location"]) == ("missing", "weights_final.npz")
        assert st["summary"] == "weights_final.npz not written by r-test (required by the contract, parity/FORMATS.md)"
        assert got["first_divergence"]["stage"] == "final_weights" and not got["ok"]
        assert [s["stage"] for s in got["stages"]] == PINNED  # the stages after it are still compared


def test_compare_pair_an_unreadable_file_is_an_error_of_its_stage_only(pair):
    """A file that cannot be read as its format is the error of its stage; the other stages are still compared."""
    ref, cand = pair({"metrics.json": ["not", "a", "record"]})
    got = stages.compare_pair(ref, cand, "strict", stages_to_check=PINNED)
    st = {s["stage"]: s for s in got["stages"]}
    assert st["metrics"]["verdict"] == "error" and not st["metrics"]["ok"]
    assert st["metrics"]["summary"] == "could not compare: AttributeError: 'list' object has no attribute 'get'"
    assert st["saved_models"]["verdict"] == "identical"
    assert got["first_divergence"]["stage"] == "metrics"


def _dead(phase, error="Traceback (most recent call last):\n  ...\nValueError: Cannot convert '(3, 3, 8.0)'\n"):
    return {"status.json": {"impl": "r-test", "ok": False, "phase": phase, "error": error, "returncode": 1,
                            "stderr_tail": "tail"}}


def test_a_worker_that_failed_is_failed_at_its_stage_and_later_stages_are_skipped(pair):
    """Died in phase build: inputs (phase data) still compared, architecture failed with the error's last line,
    every stage of a later phase skipped; the first divergence is the failure."""
    got = stages.compare_pair(*pair(_dead("build")), "strict", stages_to_check=PINNED)
    st = {s["stage"]: s for s in got["stages"]}
    assert st["inputs"]["verdict"] == "identical"
    assert st["architecture"]["verdict"] == "failed" and st["architecture"]["location"] == "worker r-test"
    assert st["architecture"]["summary"] == (
        "worker r-test failed in phase build: ValueError: Cannot convert '(3, 3, 8.0)'")
    assert st["architecture"]["details"] == {"returncode": 1, "stderr_tail": "tail"}
    for name in ("initial_weights", "batch_losses", "final_weights", "predictions", "metrics", "saved_models"):
        assert st[name]["verdict"] == "skipped" and not st[name]["ok"], name
        assert st[name]["summary"] == "not reached: worker r-test failed in phase build"
    assert got["first_divergence"]["stage"] == "architecture" and got["first_divergence"]["verdict"] == "failed"
    assert not got["ok"]


def test_a_worker_that_failed_late_keeps_the_earlier_stages(pair):
    """Died in phase save: predictions (evaluation) and metrics (train) still compared; final_weights failed."""
    got = stages.compare_pair(*pair(_dead("save", None)), "strict", stages_to_check=PINNED)
    st = {s["stage"]: s["verdict"] for s in got["stages"]}
    assert st == {"inputs": "identical", "architecture": "identical", "initial_weights": "identical",
                  "batch_losses": "identical", "final_weights": "failed", "predictions": "identical",
                  "metrics": "identical", "saved_models": "skipped"}
    summary = {s["stage"]: s for s in got["stages"]}["final_weights"]["summary"]
    assert summary == "worker r-test failed in phase save: unknown error"


def test_a_skipped_stage_is_no_divergence(pair):
    """Stages asked for in another order: a stage skipped after a failure is never the first divergence."""
    got = stages.compare_pair(*pair(_dead("save", "boom")), stages_to_check=["saved_models", "final_weights"])
    assert [s["verdict"] for s in got["stages"]] == ["skipped", "failed"]
    assert got["first_divergence"]["stage"] == "final_weights"


def test_the_earlier_failure_of_two_is_named(pair):
    """Both workers failed: the earlier stage is named; at the same stage, the reference."""
    ref_dead = {"status.json": dict(_dead("evaluation")["status.json"], impl="python", error="late")}
    ref, cand = pair(_dead("build"), ref_dead)
    assert stages.compare_pair(ref, cand, stages_to_check=PINNED)["first_divergence"]["summary"].startswith(
        "worker r-test failed in phase build")
    ref, cand = pair(_dead("build", "cand"), {"status.json": dict(ref_dead["status.json"], phase="build")})
    assert stages.compare_pair(ref, cand, stages_to_check=PINNED)["first_divergence"]["summary"] == (
        "worker python failed in phase build: late")  # the same stage: the reference is named


def test_a_worker_without_status_or_phase_failed_at_the_start(tmp_path):
    """No status.json: failed at the first stage, in phase start, every other stage skipped; the default stage
    list is every stage, in data-flow order."""
    ref = write_worker(tmp_path / "ref", "python")
    cand = write_worker(tmp_path / "cand", "r-test", {"status.json": None})
    got = stages.compare_pair(ref, cand)
    assert [s["stage"] for s in got["stages"]] == EXPECTED_STAGES
    assert [s["verdict"] for s in got["stages"]] == ["failed"] + ["skipped"] * 9
    assert got["stages"][0]["summary"] == (f"worker r-test failed in phase start: no status.json in "
                                           f"{tmp_path / 'cand'}")
    assert got["stages"][1]["summary"] == "not reached: worker r-test failed in phase start"
    weird = write_worker(tmp_path / "weird", "r-test", _dead("fit", "  \n boom \n\n"))
    got = stages.compare_pair(ref, weird)
    assert [s["verdict"] for s in got["stages"]] == ["failed"] + ["skipped"] * 9
    assert got["stages"][0]["summary"] == "worker r-test failed in phase fit: boom"
    assert got["stages"][1]["summary"] == "not reached: worker r-test failed in phase fit"


def test_one_line_of_an_error():
    """An error's last non-empty line, cut at 300 characters; nothing is an unknown error."""
    assert stages._one_line("a\n\n  b  \n") == "b"
    assert stages._one_line(None) == stages._one_line("") == stages._one_line(" \n ") == "unknown error"
    assert stages._one_line("x" * 400) == "x" * 300


# ---------------------------------------------------------------------------------------------- a run

def test_compare_workers_document(pair, pinned):
    """comparison.json: schema, version, mode, workers, stages, the tolerances merged with the defaults, pairs and
    verdict."""
    ref, cand = pair()
    doc = stages.compare_workers([ref, cand], "strict", {"metrics": (0.5, 0.5)})
    assert (doc["schema"], doc["version"], doc["mode"], doc["reference"], doc["workers"]) == (
        "tailings-parity/comparison", 1, "strict", "python", ["python", "r-test"])
    assert doc["stages"] == PINNED and doc["repeats"] == [] and doc["statistical"] is None
    assert doc["tolerances"]["metrics"] == [0.5, 0.5] and doc["tolerances"]["final_weights"] == [1e-3, 1e-3]
    assert [p["candidate"] for p in doc["pairs"]] == ["r-test"]
    assert (doc["ok"], doc["first_divergence"]) == (True, None)
    assert doc["verdict"] == "PARITY: bit-identical across python, r-test (strict, 2 workers)"
    with pytest.raises(CompareError) as err:
        stages.compare_workers([])
    assert str(err.value) == "no worker folders to compare"


def test_compare_workers_within_tolerance_and_diverged(pair, pinned):
    """The run's verdict line: PARITY within tolerance, or DIVERGED naming candidate, reference, stage, place and
    summary."""
    ref, cand = pair(_bias_up())
    doc = stages.compare_workers([ref, cand], "tolerance")
    assert doc["ok"] and doc["verdict"] == "PARITY: within tolerance across python, r-test (tolerance, 2 workers)"
    doc = stages.compare_workers([ref, cand], "strict")
    assert not doc["ok"]
    assert doc["verdict"] == ("DIVERGED: r-test vs python at stage final_weights, conv/bias: 1 of 4 variables "
                              f"differ; first conv/bias: max ulp 1, max abs {BIAS_ULP:.3g}, rel L2 {BIAS_REL}")
    assert doc["first_divergence"]["candidate"] == "r-test" and doc["first_divergence"]["reference"] == "python"


def test_compare_workers_one_worker_is_no_comparison(tmp_path, pinned):
    """One worker is no parity claim (NO COMPARISON); one that failed is FAILED."""
    only = write_worker(tmp_path / "p", "python")
    doc = stages.compare_workers([only], "strict")
    assert doc["ok"] and [p["candidate"] for p in doc["pairs"]] == ["python"]
    assert doc["verdict"] == "NO COMPARISON: only python ran (strict); give --impls with two or more workers"
    dead = write_worker(tmp_path / "d", "python", _dead("build", "boom"))
    doc = stages.compare_workers([dead], "tolerance")
    assert not doc["ok"] and doc["verdict"].startswith("FAILED: worker python failed in phase build: boom")


def test_compare_workers_names_the_earliest_stage_over_all_pairs(tmp_path, pinned):
    """Of several candidates, the one that diverged at the earliest stage is named."""
    ref = write_worker(tmp_path / "p", "python")
    late = write_worker(tmp_path / "a", "r-rpy2", _metric(1, "val", "iou", 0.25))
    early = write_worker(tmp_path / "b", "r-rscript", changed("batch_losses.npy", lambda a: a.__setitem__(
        (0, 0), 0.5)))
    doc = stages.compare_workers([ref, late, early])
    assert doc["first_divergence"]["stage"] == "batch_losses" and doc["first_divergence"]["candidate"] == "r-rscript"
    assert doc["verdict"].startswith("DIVERGED: r-rscript vs python at stage batch_losses, epoch 1 batch 1: ")


def test_compare_workers_repeats_are_compared_strictly_without_saved_models(tmp_path, pinned):
    """A repeat is compared with the first run of its language, bit for bit whatever the mode, and without the
    cross-loads (only the first repeat's models are loaded)."""
    ref = write_worker(tmp_path / "p", "python")
    cand = write_worker(tmp_path / "r", "r-test")
    again = write_worker(tmp_path / "p2", "python", _bias_up())
    doc = stages.compare_workers([ref, cand], "tolerance", repeats={"python": [ref, again]})
    rep = doc["repeats"][0]
    assert rep["kind"] == "repeat" and rep["mode"] == "strict"
    assert [s["stage"] for s in rep["stages"]] == [s for s in PINNED if s != "saved_models"]
    assert not doc["ok"]
    assert doc["verdict"].startswith("NOT REPRODUCIBLE: repeats of python differ at stage final_weights, conv/bias: ")
    reloaded = write_worker(tmp_path / "p3", "python", changed("crossload_r.npy", lambda a: a.fill(0.0)))
    doc = stages.compare_workers([ref, cand], "strict", repeats={"python": [ref, reloaded]})
    assert doc["ok"] and len(doc["repeats"]) == 1 and doc["repeats"][0]["ok"]


def test_compare_workers_gives_every_pair_the_manifest_rules_and_tolerances(tmp_path, pinned):
    """Candidates and repeats alike: the val tile named by the manifest's id, classes counted at the rules'
    class_threshold (0.25, which a 1-ULP change crosses here), the run's tolerances in the details."""
    def at(value):
        return changed("predictions_val.npy", lambda a: a.__setitem__((1, 0, 0), value))
    ref = write_worker(tmp_path / "p", "python", at(0.25))
    cand = write_worker(tmp_path / "r", "r-test", at(one_ulp_up(np.float32(0.25))))
    again = write_worker(tmp_path / "p2", "python", at(one_ulp_up(np.float32(0.25))))
    doc = stages.compare_workers([ref, cand], "tolerance", {"predictions": (0.5, 0.5)}, {"val": [7, 9]},
                                 repeats={"python": [ref, again]}, rules={"class_threshold": 0.25})
    for pair in (doc["pairs"][0], doc["repeats"][0]):
        pred = next(st for st in pair["stages"] if st["stage"] == "predictions")
        assert pred["verdict"] == "differs" and pred["location"] == "val tile 9", pair["candidate"]
        assert pred["details"]["class_differ_share"] == 1 / 32
        weights = next(st for st in pair["stages"] if st["stage"] == "final_weights")
        assert weights["details"]["rtol"] == 1e-3
    doc = stages.compare_workers([ref, cand], "tolerance", {"final_weights": (0.5, 0.25)},
                                 repeats={"python": [ref, again]})
    for pair in (doc["pairs"][0], doc["repeats"][0]):
        weights = next(st for st in pair["stages"] if st["stage"] == "final_weights")
        assert (weights["details"]["rtol"], weights["details"]["atol"]) == (0.5, 0.25)


def test_compare_workers_statistical(tmp_path, pinned):
    """Statistical mode: the verdict is the test over seeds, or says that none could run."""
    ious = {"python": [0.50, 0.52, 0.49], "r-test": [0.51, 0.50, 0.52]}
    groups = {impl: [write_worker(tmp_path / f"{impl}{k}", impl, _metric(2, "val", "iou", v))
                     for k, v in enumerate(values)] for impl, values in ious.items()}
    first = [groups["python"][0], groups["r-test"][0]]
    doc = stages.compare_workers(first, "statistical", statistical_groups=groups)
    assert doc["statistical"]["ok"] and doc["ok"]
    assert doc["verdict"] == ("PARITY (statistical): no difference in final val IoU or loss at alpha 0.05 across "
                              "python, r-test")
    doc = stages.compare_workers(first, "statistical")
    assert not doc["ok"] and doc["verdict"] == "DIVERGED (statistical): no statistical test could run"


# ---------------------------------------------------------------------------------------------- verdicts

def _pair(candidate, stage=None, verdict="differs", location=None, summary="what", stage_verdicts=("identical",)):
    fd = None if stage is None else {"stage": stage, "location": location, "verdict": verdict, "summary": summary}
    return {"reference": "python", "candidate": candidate, "first_divergence": fd,
            "stages": [{"stage": "inputs", "verdict": v} for v in stage_verdicts]}


def test_first_divergence_is_the_earliest_stage_then_the_first_pair():
    """The earliest stage over all pairs, ties to the first pair, named with its candidate and reference."""
    pairs = [_pair("a", "metrics"), _pair("b", "architecture", location="conv"), _pair("c", "architecture"),
             _pair("d")]
    assert stages.first_divergence(pairs) == {"stage": "architecture", "location": "conv", "verdict": "differs",
                                              "summary": "what", "candidate": "b", "reference": "python"}
    assert stages.first_divergence([_pair("a"), _pair("b")]) is None
    assert stages.first_divergence([]) is None
    assert stages.first_divergence([_pair("a", "saved_models"), _pair("b", "inputs")])["candidate"] == "b"


@pytest.mark.parametrize("doc, ok, line", [
    ({"workers": ["python", "r-rpy2"], "mode": "strict", "pairs": [_pair("r-rpy2")]},
     True, "PARITY: bit-identical across python, r-rpy2 (strict, 2 workers)"),
    ({"workers": ["python", "r-rpy2", "r-rscript"], "mode": "tolerance",
      "pairs": [_pair("r-rpy2"), _pair("r-rscript", stage_verdicts=("identical", "within_tolerance"))]},
     True, "PARITY: within tolerance across python, r-rpy2, r-rscript (tolerance, 3 workers)"),
    ({"workers": ["python"], "mode": "tolerance", "pairs": [_pair("python")]},
     True, "NO COMPARISON: only python ran (tolerance); give --impls with two or more workers"),
    ({"workers": ["python", "r-rpy2"], "mode": "strict",
      "pairs": [_pair("r-rpy2", "final_weights", location="conv/bias", summary="1 of 4 differ")]},
     False, "DIVERGED: r-rpy2 vs python at stage final_weights, conv/bias: 1 of 4 differ"),
    ({"workers": ["python", "r-rpy2"], "mode": "strict",
      "pairs": [_pair("r-rpy2", "metrics", summary="2 vs 1 epochs")]},
     False, "DIVERGED: r-rpy2 vs python at stage metrics: 2 vs 1 epochs"),
    ({"workers": ["python", "r-rpy2"], "mode": "strict",
      "pairs": [_pair("r-rpy2", "architecture", verdict="failed", summary="worker r-rpy2 failed in phase build: x")]},
     False, ("FAILED: worker r-rpy2 failed in phase build: x (its whole output: worker_output.log in its folder "
             "under workers/; `tailings-parity doctor` checks the R and Python set-up)")),
    ({"workers": ["python", "r-rpy2"], "mode": "strict", "pairs": [_pair("r-rpy2")],
      "repeats": [_pair("python", "batch_losses", location="epoch 1 batch 2", summary="0.5 vs 0.25")]},
     False, "NOT REPRODUCIBLE: repeats of python differ at stage batch_losses, epoch 1 batch 2: 0.5 vs 0.25"),
    ({"workers": ["python"], "mode": "strict", "pairs": [_pair("python")],
      "repeats": [_pair("python", "inputs", summary="x")]},
     False, "NOT REPRODUCIBLE: repeats of python differ at stage inputs: x"),
])
def test_verdict_of(doc, ok, line):
    """Each verdict line (PARITY, NO COMPARISON, DIVERGED, FAILED, NOT REPRODUCIBLE) and its first divergence."""
    got = stages.verdict_of(doc)
    assert (got["ok"], got["verdict"]) == (ok, line)
    named = [dict(p["first_divergence"], candidate=p["candidate"], reference=p["reference"])
             for p in doc["pairs"] + doc.get("repeats", []) if p["first_divergence"]]
    expected = named[0] if named else None  # each case has at most one divergence
    assert set(got) == {"ok", "first_divergence", "verdict"} and got["first_divergence"] == expected


def test_verdict_of_a_divergence_beats_a_repeat():
    """A divergence between languages is the verdict even when a repeat differs too."""
    doc = {"workers": ["python", "r-rpy2"], "mode": "strict", "pairs": [_pair("r-rpy2", "metrics", summary="m")],
           "repeats": [_pair("python", "inputs", summary="x")]}
    got = stages.verdict_of(doc)
    assert got["verdict"] == "DIVERGED: r-rpy2 vs python at stage metrics: m"
    assert got["first_divergence"]["stage"] == "metrics"


def test_verdict_of_statistical_mode():
    """Statistical mode: PARITY at the test's alpha, or the first failed test's line."""
    base = {"workers": ["python", "r-rpy2"], "mode": "statistical", "pairs": [_pair("r-rpy2", "final_weights")]}
    ok = stages.verdict_of(dict(base, statistical={"ok": True, "alpha": 0.01, "tests": []}))
    assert ok["ok"] and ok["verdict"] == ("PARITY (statistical): no difference in final val IoU or loss at alpha "
                                          "0.01 across python, r-rpy2")
    assert ok["first_divergence"]["stage"] == "final_weights"  # the bits may differ: the pairs still say where
    bad = stages.verdict_of(dict(base, statistical={"ok": False, "tests": [
        {"ok": True, "candidate": "r-rpy2", "summary": "val iou: fine"},
        {"ok": False, "candidate": "r-rpy2", "summary": "val loss: mean 0.3 vs 0.6, p = 0.001"}]}))
    assert not bad["ok"] and bad["verdict"] == "DIVERGED (statistical): r-rpy2 val loss: mean 0.3 vs 0.6, p = 0.001"
    assert stages.verdict_of(dict(base, statistical={"ok": True, "tests": []}))["verdict"].startswith(
        "PARITY (statistical): no difference in final val IoU or loss at alpha 0.05 ")
    assert stages.verdict_of(dict(base, statistical={"ok": False}))["verdict"] == (
        "DIVERGED (statistical): no statistical test could run")


# ---------------------------------------------------------------------------------------------- statistics

def _seeds(tmp_path, impl, values, ok=True):
    def files(v):
        def edit(m):
            m["epochs"][-1]["val"].update(iou=v, loss=1 - v)
        return {**changed("metrics.json", edit), **({} if ok else _dead("train"))}
    return [write_worker(tmp_path / f"{impl}-{k}", impl, files(v)) for k, v in enumerate(values)]


def test_final_val(tmp_path):
    """The last epoch's validation loss and IoU (of any number of epochs), None for what it lacks."""
    w = write_worker(tmp_path / "w", "python")
    assert stages.final_val(w) == {"loss": 0.6, "iou": 0.5}
    three = changed("metrics.json", lambda m: m["epochs"].append({"epoch": 3, "val": {"loss": 0.4, "iou": 0.7}}))
    assert stages.final_val(write_worker(tmp_path / "3", "python", three)) == {"loss": 0.4, "iou": 0.7}
    one = {"metrics.json": {"epochs": [{"epoch": 1, "train": {"loss": 0.7}}]}}
    assert stages.final_val(write_worker(tmp_path / "1", "python", one)) == {"loss": None, "iou": None}
    assert stages.final_val(write_worker(tmp_path / "n", "python", {"metrics.json": None})) is None
    assert stages.final_val(write_worker(tmp_path / "e", "python", {"metrics.json": {"epochs": []}})) is None


def test_statistical_identical_shifted_and_too_few(tmp_path):
    """Identical values pass with p = 1; a clear shift fails; fewer than 2 seeds give no test."""
    ref = _seeds(tmp_path, "python", [0.5, 0.52, 0.49])
    same = stages.compare_statistical({"python": ref, "r-same": ref}, "python")
    assert same["ok"] and [t["p_value"] for t in same["tests"]] == [1.0, 1.0]
    assert [t["summary"] for t in same["tests"]] == ["val iou: identical values", "val loss: identical values"]
    far = _seeds(tmp_path, "r-far", [0.8, 0.82, 0.79])
    doc = stages.compare_statistical({"python": ref, "r-far": far}, "python", alpha=0.05)
    iou = doc["tests"][0]
    assert not doc["ok"] and not iou["ok"] and iou["p_value"] < 0.05
    assert (iou["candidate"], iou["metric"], iou["n_reference"], iou["n_candidate"]) == ("r-far", "val_iou", 3, 3)
    assert iou["mean_reference"] == pytest.approx(0.5033333) and iou["mean_candidate"] == pytest.approx(0.8033333)
    assert iou["std_reference"] == pytest.approx(np.std([0.5, 0.52, 0.49], ddof=1))
    assert iou["reference_values"] == [0.5, 0.52, 0.49] and iou["candidate_values"] == [0.8, 0.82, 0.79]
    assert iou["summary"].startswith("val iou: mean 0.5033 vs 0.8033, p = ")
    assert (doc["alpha"], doc["reference"], doc["test"]) == (0.05, "python", "Welch two-sample t-test (two-sided)")
    few = stages.compare_statistical({"python": ref, "r-one": far[:1]}, "python")
    assert not few["ok"] and few["tests"][0]["p_value"] is None and few["tests"][0]["std_candidate"] is None
    assert few["tests"][0]["summary"] == "val iou: needs at least 2 finished seeds per language"


def test_statistical_counts_only_finished_workers_and_needs_a_candidate(tmp_path):
    """A failed worker, or a finished one without epochs, gives no value; a reference without workers none."""
    ref = _seeds(tmp_path, "python", [0.5, 0.52])
    dead = _seeds(tmp_path, "r-dead", [0.5, 0.52], ok=False)
    doc = stages.compare_statistical({"python": ref, "r-dead": dead}, "python")
    assert doc["tests"][0]["n_candidate"] == 0 and doc["tests"][0]["mean_candidate"] is None and not doc["ok"]
    assert stages.compare_statistical({"python": ref}, "python")["ok"] is False
    empty = write_worker(tmp_path / "empty", "r-x", {"metrics.json": {"epochs": []}})
    doc = stages.compare_statistical({"python": ref, "r-x": [empty] + ref}, "python")
    assert doc["tests"][0]["n_candidate"] == 2
    doc = stages.compare_statistical({"r-x": ref}, "python")
    assert doc["tests"][0]["n_reference"] == 0 and doc["tests"][0]["candidate"] == "r-x"


def test_statistical_is_welchs_test(tmp_path):
    """Unequal sizes and spreads: the statistic is Welch's t, (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b),
    and its p-value Welch's; a p-value equal to alpha passes."""
    from scipy import stats as scipy_stats

    a, b = [0.5, 0.52, 0.49], [0.6, 0.4]
    doc = stages.compare_statistical({"python": _seeds(tmp_path, "python", a), "r-x": _seeds(tmp_path, "r-x", b)},
                                     "python")
    iou = doc["tests"][0]
    t = (np.mean(a) - np.mean(b)) / math.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 2)
    assert iou["statistic"] == pytest.approx(t)
    welch = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert iou["p_value"] == pytest.approx(welch) and iou["ok"] is True
    assert iou["p_value"] != pytest.approx(float(scipy_stats.ttest_ind(a, b).pvalue))
    assert iou["std_candidate"] == pytest.approx(np.std(b, ddof=1))
    assert iou["std_reference"] == pytest.approx(np.std(a, ddof=1))
    at = stages.compare_statistical({"python": _seeds(tmp_path, "p2", a), "r-x": _seeds(tmp_path, "r2", b)},
                                    "python", alpha=iou["p_value"])
    assert at["tests"][0]["ok"] is True and at["alpha"] == iou["p_value"]


def test_statistical_constant_samples_of_one_value_are_identical(tmp_path):
    """Three seeds of 0.5 against two of 0.5: no spread, the same value: identical (statistic 0, p 1)."""
    doc = stages.compare_statistical({"python": _seeds(tmp_path, "python", [0.5, 0.5, 0.5]),
                                      "r-x": _seeds(tmp_path, "r-x", [0.5, 0.5])}, "python")
    iou = doc["tests"][0]
    assert (iou["statistic"], iou["p_value"], iou["ok"], iou["summary"]) == (0.0, 1.0, True,
                                                                            "val iou: identical values")
    assert doc["ok"]


def test_statistical_a_nan_loss_fails(tmp_path):
    """A seed whose training diverged to a NaN loss: no p-value to trust, so p = 0, not at parity."""
    ref = _seeds(tmp_path, "python", [0.5, 0.52, 0.49])
    nan = _seeds(tmp_path, "r-x", [0.5, float("nan"), 0.49])
    doc = stages.compare_statistical({"python": ref, "r-x": nan}, "python")
    assert doc["tests"][0]["p_value"] == 0.0 and doc["tests"][0]["ok"] is False and not doc["ok"]


def test_statistical_spread_needs_two_values(tmp_path):
    """A standard deviation needs two values; none without them, and no mean without values."""
    two = _seeds(tmp_path, "python", [0.5, 0.7])
    one = _seeds(tmp_path, "r-x", [0.6])
    row = stages.compare_statistical({"python": two, "r-x": one}, "python")["tests"][0]
    assert row["std_reference"] == pytest.approx(np.std([0.5, 0.7], ddof=1)) and row["std_candidate"] is None
    assert row["ok"] is False and row["p_value"] is None
    row = stages.compare_statistical({"python": one, "r-x": two}, "python")["tests"][0]
    assert row["std_reference"] is None and row["std_candidate"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    row = stages.compare_statistical({"r-x": two}, "python")["tests"][0]
    assert (row["n_reference"], row["mean_reference"], row["std_reference"]) == (0, None, None)


@pytest.mark.filterwarnings("ignore:Precision loss occurred")
def test_statistical_constant_values_that_differ(tmp_path):
    """Two constant samples of different values: no variance to test with, so not at parity (p = 0)."""
    ref = _seeds(tmp_path, "python", [0.5, 0.5])
    other = _seeds(tmp_path, "r-x", [0.6, 0.6])
    doc = stages.compare_statistical({"python": ref, "r-x": other}, "python")
    assert not doc["tests"][0]["ok"] and doc["tests"][0]["p_value"] == 0.0


# ---------------------------------------------------------------------------------------------- the file

def test_write_comparison_turns_numpy_values_into_json(tmp_path):
    """NumPy integers, floats and arrays are written as JSON numbers and lists; anything else is refused."""
    path = tmp_path / "comparison.json"
    stages.write_comparison({"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(2), "s": "t"}, path)
    assert path.read_text() == json.dumps({"n": 3, "x": 0.5, "a": [0, 1], "s": "t"}, indent=1) + "\n"
    with pytest.raises(TypeError) as err:
        stages.write_comparison({"x": {1, 2}}, path)
    assert str(err.value) == "not JSON serialisable: set"
