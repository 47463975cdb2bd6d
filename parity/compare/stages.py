"""Stage-by-stage comparison of worker folders: verdicts, the first divergence, and float32 ULP distances.

Reads only the files of ``parity/FORMATS.md`` ("Worker output") through ``parity.artifacts``; never a live model. The reference is the
first worker (``python``); every other worker is compared to it, stage by stage, in the order the data flows:
a difference in the inputs explains every later one, so the earliest differing stage is the one to fix.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from parity.artifacts.diffs import array_diff, fmt, max_ulp_diff, within
from parity.artifacts.folder import WorkerFolder  # noqa: F401  (callers build pairs from it)
from parity.errors import CompareError
from python_impl.config import load_rules

SCHEMA = "tailings-parity/comparison"
VERSION = 1

MODES = ("strict", "tolerance", "statistical")
# Tolerance mode: the share of validation pixels whose class may differ between two workers.
DEFAULT_CLASS_SHARE = 1e-3
STAT_ALPHA = 0.05

# The phases a worker goes through, in order, as its progress lines name them (``phase <name>``): a worker that
# failed in a phase has written the evidence of no stage from that phase on.
PHASES = ("start", "data", "build", "train", "evaluation", "save", "done")


@dataclass(frozen=True)
class Context:
    """What a stage comparison reads besides the two worker folders: the mode (strict or tolerance; statistical
    runs compare each pair like tolerance), the tolerances by stage, the run's manifest and rules."""

    mode: str
    tolerances: dict
    manifest: dict | None = None
    rules: dict | None = None


@dataclass(frozen=True)
class Stage:
    """One comparison stage: its ``name`` and ``title``; the worker ``phase`` that writes its evidence; its
    evidence ``files`` (FORMATS.md "Worker output": a required one that is missing makes the stage "missing",
    never a pass); its default ``tolerance`` (rtol, atol) in tolerance mode (None: exact in every mode); and
    ``compare(ref, cand, ctx)``, which returns the stage's result."""

    name: str
    title: str
    phase: str
    files: tuple[str, ...]
    tolerance: tuple[float, float] | None
    compare: Callable


# Every stage, in the order data flows through a worker (the order of declaration below): the first stage that
# differs is the first divergence. Adding a stage is one ``@stage(...)`` on one function.
REGISTRY: dict[str, Stage] = {}


def stage(name: str, *, title: str, phase: str, files: tuple[str, ...], tolerance: tuple[float, float] | None = None):
    """Declare the decorated ``compare(ref, cand, ctx)`` as stage ``name`` (see ``Stage``), after those before it."""
    if phase not in PHASES:
        raise ValueError(f"stage {name}: phase {phase!r} is not one of {PHASES}")

    def register(compare: Callable) -> Callable:
        REGISTRY[name] = Stage(name, title, phase, tuple(files), tolerance, compare)
        return compare
    return register


def missing_evidence(stage: str, ref, cand) -> dict | None:
    """A "missing" result naming the required files of ``stage`` (required by the contract) that ``ref`` or
    ``cand`` did not write; None when all are there."""
    from parity.artifacts.contract import is_required

    gone = {}
    for name in REGISTRY[stage].files:
        if is_required(name):
            for w in (ref, cand):
                if not w.has(name):
                    gone.setdefault(name, []).append(w.name)
    if not gone:
        return None
    what = "; ".join(f"{name} not written by {', '.join(dict.fromkeys(who))}" for name, who in gone.items())
    return _result(stage, "missing", f"{what} (required by the contract, parity/FORMATS.md)",
                   location=next(iter(gone)), missing=sorted(gone))


# ---------------------------------------------------------------------------------------------- stages

def _result(stage, verdict, summary, location=None, **details) -> dict:
    return {"stage": stage, "title": REGISTRY[stage].title if stage in REGISTRY else stage, "verdict": verdict,
            "ok": verdict in ("identical", "within_tolerance"),
            "location": location, "summary": summary, "details": details}


def _missing(stage, ref: WorkerFolder, cand: WorkerFolder, filename: str) -> dict:
    who = [w.name for w in (ref, cand) if not w.has(filename)]
    return _result(stage, "missing", f"{filename} not written by {', '.join(who)}", location=None)


def _tol(ctx: Context, stage: str) -> tuple[float, float]:
    return tuple(ctx.tolerances.get(stage) or REGISTRY[stage].tolerance or (0.0, 0.0))


def _array_verdict(stage, ctx: Context, diff, a, b) -> str:
    if diff["identical"]:
        return "identical"
    if ctx.mode == "tolerance" and within(diff, a, b, *_tol(ctx, stage)):
        return "within_tolerance"
    return "differs"


def _input_hint(a: np.ndarray, b: np.ndarray, what: str) -> str | None:
    """Name the classic mistake when the candidate's array is a known transform of the reference's."""
    if a.shape == b.shape and what == "mask" and np.array_equal(b, 1 - a):
        return "the mask is inverted (candidate = 1 - reference)"
    if a.ndim >= 2 and a.shape[0] == a.shape[1] and a.shape == b.shape and np.array_equal(b, np.swapaxes(a, 0, 1)):
        return "rows and columns are swapped (an R array not permuted into NHWC?)"
    if a.ndim == 3 and a.shape == b.shape and np.array_equal(b, a[..., ::-1]) and not np.array_equal(a, b):
        return "the channel order is reversed (BGR vs RGB?)"
    if a.shape == b.shape and a.size:
        ulp = max_ulp_diff(a, b)
        if 0 < ulp <= 2:
            return f"values differ by at most {ulp} ULP: the same formula rounded differently (float64 cast late?)"
    if a.shape != b.shape:
        return f"shapes differ: {a.shape} vs {b.shape}"
    return None


@stage("inputs", title="input data (per tile)", phase="data", files=("input_hashes.json", "inputs_val.npz"),
       tolerance=(0.0, 0.0))  # inputs never depend on the device: exact in every mode
def compare_inputs(ref, cand, ctx: Context) -> dict:
    """Per tile: the sha256 of the float32 image and mask as each language read them; diagnoses val tiles."""
    ha, hb = ref.json("input_hashes.json"), cand.json("input_hashes.json")
    if ha is None or hb is None:
        return _missing("inputs", ref, cand, "input_hashes.json")
    tiles = sorted(set(ha) | set(hb), key=lambda t: int(t) if str(t).lstrip("-").isdigit() else 0)
    bad = []
    for t in tiles:
        for what in ("image", "mask"):
            if (ha.get(t) or {}).get(what) != (hb.get(t) or {}).get(what):
                bad.append((t, what))
    details = {"tiles": len(tiles), "tiles_differ": sorted({t for t, _ in bad}, key=str),
               "images_differ": sum(1 for _, w in bad if w == "image"),
               "masks_differ": sum(1 for _, w in bad if w == "mask")}
    hint = None
    za, zb = ref.npz("inputs_val.npz"), cand.npz("inputs_val.npz")
    if bad and za is not None and zb is not None:
        for key, what in (("images", "image"), ("masks", "mask")):
            if key in za and key in zb and not np.array_equal(za[key], zb[key]):
                d = array_diff(za[key], zb[key])
                details[f"val_{key}"] = d
                if hint is None and za[key].shape[:1] == zb[key].shape[:1] and len(za[key]):
                    hint = _input_hint(za[key][0], zb[key][0], what)
                    if hint is None and za[key].shape != zb[key].shape:
                        hint = f"shapes differ: {za[key].shape} vs {zb[key].shape}"
    details["hint"] = hint
    if not bad:
        return _result("inputs", "identical", f"{len(tiles)} tiles, images and masks bit-identical", **details)
    t, what = bad[0]
    summary = (f"{len(details['tiles_differ'])} of {len(tiles)} tiles differ "
               f"({details['images_differ']} images, {details['masks_differ']} masks); first: tile {t} {what}")
    if hint:
        summary += f"; {hint}"
    return _result("inputs", "differs", summary, location=f"tile {t} {what}", **details)


@stage("batch_order", title="split and batch order", phase="train", files=("batch_order.json",))
def compare_batch_order(ref, cand, ctx: Context) -> dict:
    """The manifest each worker read (its hash) and the tile ids it fed, batch by batch (batch_order.json)."""
    manifest = ctx.manifest
    oa, ob = ref.json("batch_order.json"), cand.json("batch_order.json")
    # Required by the contract (FORMATS.md): a worker that did not record what it fed gives no verdict.
    if oa is None or ob is None:
        return _missing("batch_order", ref, cand, "batch_order.json")
    details = {"manifest_sha256": {ref.name: oa.get("manifest_sha256"), cand.name: ob.get("manifest_sha256")}}
    if manifest is not None:
        details["manifest_sha256"]["run"] = manifest.get("manifest_sha256")
    if oa.get("manifest_sha256") != ob.get("manifest_sha256"):
        return _result("batch_order", "differs", "the workers read different manifests (sha256 differs)",
                       location="manifest", **details)
    for key in ("train", "val", "test"):
        if key in oa and key in ob and oa[key] != ob[key]:
            return _result("batch_order", "differs", f"the {key} split differs", location=f"split {key}", **details)
    ba, bb = oa.get("batches", []), ob.get("batches", [])
    for e in range(max(len(ba), len(bb))):
        ea = ba[e] if e < len(ba) else []
        eb = bb[e] if e < len(bb) else []
        for i in range(max(len(ea), len(eb))):
            xa = ea[i] if i < len(ea) else None
            xb = eb[i] if i < len(eb) else None
            if xa != xb:
                return _result("batch_order", "differs",
                               f"epoch {e + 1} batch {i + 1}: tiles {xa} vs {xb}",
                               location=f"epoch {e + 1} batch {i + 1}", epoch=e + 1, batch=i + 1, **details)
    n = sum(len(e) for e in ba)
    fed = compare_fed(oa.get("samples"), ob.get("samples"), ba)
    if fed is not None:
        return _result("batch_order", "differs", fed["summary"], location=fed["location"], **fed["where"],
                       **details)
    what = " and every sample fed bit-identical" if oa.get("samples") is not None else ""
    return _result("batch_order", "identical", f"same manifest and the same {n} batches in the same order{what}",
                   **details)


def compare_fed(sa, sb, batches) -> dict | None:
    """The first sample fed differently (batch_order.json ``samples``: per epoch, batch and row the digests of the
    image and mask after crop and augmentation): its epoch, batch, row and tile, and whether the batch holds the
    same samples in another order; None when all are equal or a worker did not record them."""
    if sa is None or sb is None:
        return None
    for e in range(max(len(sa), len(sb))):
        ea = sa[e] if e < len(sa) else []
        eb = sb[e] if e < len(sb) else []
        for i in range(max(len(ea), len(eb))):
            xa = ea[i] if i < len(ea) else []
            xb = eb[i] if i < len(eb) else []
            for r in range(max(len(xa), len(xb))):
                da = xa[r] if r < len(xa) else None
                db = xb[r] if r < len(xb) else None
                if da == db:
                    continue
                tiles = batches[e][i] if e < len(batches) and i < len(batches[e]) else []
                tile = tiles[r] if r < len(tiles) else None
                if da is None or db is None:
                    part = f"fed {len(xa)} vs {len(xb)} samples"
                else:
                    parts = [p for p, k in (("image", 0), ("mask", 1)) if da[k] != db[k]]
                    part = " and ".join(parts) + (" differ" if len(parts) > 1 else " differs")
                    if sorted(map(tuple, xa)) == sorted(map(tuple, xb)):
                        part += (f": the batch holds the same samples in another order (row {r + 1} holds the "
                                 f"reference's row {[tuple(x) for x in xa].index(tuple(db)) + 1})")
                    else:
                        part += " (after crop and augmentation)"
                where = {"epoch": e + 1, "batch": i + 1, "row": r + 1, "tile": tile}
                return {"summary": f"epoch {e + 1} batch {i + 1} row {r + 1} (tile {tile}): the {part}",
                        "location": f"epoch {e + 1} batch {i + 1} row {r + 1}", "where": where}
    return None


def _show(value) -> str:
    """A config value in a summary: floats in 6 significant digits (0.001, not 0.0010000000474974513)."""
    return f"{value:.6g}" if isinstance(value, float) else json.dumps(value)


def compare_compiled(ca: dict, cb: dict) -> str | None:
    """The first difference between two compiled.json records (optimizer, loss, compile flags), or None."""
    for part in ("optimizer", "loss"):
        xa, xb = ca.get(part) or {}, cb.get(part) or {}
        if xa.get("class_name") != xb.get("class_name"):
            return f"{part} {xa.get('class_name')} vs {xb.get('class_name')}"
        ga, gb = xa.get("config") or {}, xb.get("config") or {}
        for key in list(ga) + [k for k in gb if k not in ga]:
            va, vb = ga.get(key, "<absent>"), gb.get(key, "<absent>")
            if va != vb or type(va) is not type(vb):
                return f"{part} {xa.get('class_name')} {key} {_show(va)} vs {_show(vb)}"
    for key in sorted((set(ca) | set(cb)) - {"optimizer", "loss"}):
        if ca.get(key, "<absent>") != cb.get(key, "<absent>"):
            return f"compile {key} {_show(ca.get(key))} vs {_show(cb.get(key))}"
    return None


@stage("architecture", title="architecture", phase="build", files=("architecture.json", "compiled.json"))
def compare_architecture(ref, cand, ctx: Context) -> dict:
    """Layer list, class names, the wiring (each layer's inputs, in order), normalised layer configs, parameter
    counts, and the compiled optimizer and loss (compiled.json)."""
    aa, ab = ref.json("architecture.json"), cand.json("architecture.json")
    if aa is None or ab is None:
        return _missing("architecture", ref, cand, "architecture.json")
    la, lb = aa.get("layers", []), ab.get("layers", [])
    # Layers pair by their place in the graph (topological order) and their wiring as places, so that Keras's
    # auto-names (conv2d_3) and renamed layers still pair; a name difference is reported, not a divergence.
    place_a = {x.get("name"): k for k, x in enumerate(la)}
    place_b = {x.get("name"): k for k, x in enumerate(lb)}
    renamed = [{"layer": i + 1, ref.name: xa.get("name"), cand.name: xb.get("name")}
               for i, (xa, xb) in enumerate(zip(la, lb)) if xa.get("name") != xb.get("name")]
    details = {"layers": len(la), "total_params": {ref.name: aa.get("total_params"), cand.name: ab.get("total_params")},
               "trainable_params": {ref.name: aa.get("trainable_params"), cand.name: ab.get("trainable_params")},
               "renamed": renamed}
    for i in range(max(len(la), len(lb))):
        xa = la[i] if i < len(la) else None
        xb = lb[i] if i < len(lb) else None
        if xa is None or xb is None:
            present = xa or xb
            return _result("architecture", "differs",
                           f"layer {i + 1} ({present.get('name')}, {present.get('class_name')}) exists only in "
                           f"{ref.name if xa else cand.name}", location=present.get("name"), **details)
        if xa.get("class_name") != xb.get("class_name"):
            return _result("architecture", "differs",
                           f"layer {i + 1}: {xa.get('name')} ({xa.get('class_name')}) vs "
                           f"{xb.get('name')} ({xb.get('class_name')})", location=xa.get("name"), **details)
        wa = [place_a.get(n) for n in xa.get("inputs") or []]
        wb = [place_b.get(n) for n in xb.get("inputs") or []]
        if wa != wb:
            return _result("architecture", "differs",
                           f"layer {i + 1} {xa['name']}: inputs {xa.get('inputs')} vs {xb.get('inputs')} (layers "
                           f"{[k + 1 for k in wa if k is not None]} vs {[k + 1 for k in wb if k is not None]})",
                           location=xa["name"], inputs={ref.name: xa.get("inputs"), cand.name: xb.get("inputs")},
                           **details)
        ca, cb = xa.get("config") or {}, xb.get("config") or {}
        keys = [k for k in sorted(set(ca) | set(cb)) if ca.get(k, "<absent>") != cb.get(k, "<absent>")
                or type(ca.get(k)) is not type(cb.get(k))]
        if keys:
            changes = "; ".join(f"{k}: {json.dumps(ca.get(k))} vs {json.dumps(cb.get(k))}" for k in keys[:4])
            return _result("architecture", "differs", f"layer {xa['name']}: {changes}", location=xa["name"],
                           config_keys=keys, **details)
        if xa.get("params") != xb.get("params"):
            return _result("architecture", "differs",
                           f"layer {xa['name']}: {xa.get('params')} vs {xb.get('params')} parameters",
                           location=xa["name"], **details)
    if aa.get("total_params") != ab.get("total_params"):
        return _result("architecture", "differs",
                       f"total parameters {aa.get('total_params')} vs {ab.get('total_params')}", **details)
    ca, cb = ref.json("compiled.json"), cand.json("compiled.json")
    if ca is None or cb is None:
        return _missing("architecture", ref, cand, "compiled.json")
    compiled = compare_compiled(ca, cb)
    if compiled:
        return _result("architecture", "differs", compiled, location=compiled.split(" ", 1)[0], **details)
    names = (f"; {len(renamed)} layers named differently (first: layer {renamed[0]['layer']} "
             f"{renamed[0][ref.name]} vs {renamed[0][cand.name]})" if renamed else "")
    return _result("architecture", "identical",
                   f"{len(la)} layers, wiring and configs identical, {aa.get('total_params')} parameters; "
                   f"compiled with the same {(ca.get('optimizer') or {}).get('class_name')} and "
                   f"{(ca.get('loss') or {}).get('class_name')}{names}", **details)


# Tolerance mode (GPU runs): single-step stages use the float32 defaults of TensorFlow's
# assertAllCloseAccordingToType and of Keras's testing.TestCase.assertAllClose (rtol = atol = 1e-6); stages that
# accumulate many training steps use Keras's own trainer-test tolerance (1e-3).
@stage("initial_weights", title="initial weights", phase="build", files=("weights_initial.npz",),
       tolerance=(1e-6, 1e-6))
def compare_initial_weights(ref, cand, ctx: Context) -> dict:
    """Every variable of the built model before training."""
    return compare_weights("initial_weights", "weights_initial.npz", ref, cand, ctx)


def compare_weights(stage, filename, ref, cand, ctx: Context) -> dict:
    """Every variable, in model order: bit-identity, max abs, max ULP, relative L2."""
    wa, wb = ref.npz(filename), cand.npz(filename)
    if wa is None or wb is None:
        return _missing(stage, ref, cand, filename)
    rtol, atol = _tol(ctx, stage)
    per_var = []
    first = None
    # Variables pair by their place in model order when both have as many (layer names may differ, as in the
    # architecture stage), else by name.
    ka, kb = list(wa), list(wb)
    pairs = (list(zip(ka, kb)) if len(ka) == len(kb) else
             [(k, k) for k in ka + [k for k in kb if k not in wa]])
    for key, key_b in pairs:
        label = key if key == key_b else f"{key} ({cand.name}: {key_b})"
        if key not in wa or key_b not in wb:
            row = {"variable": key, "identical": False, "verdict": "missing",
                   "missing_in": ref.name if key not in wa else cand.name}
        else:
            row = {"variable": label, **array_diff(wa[key], wb[key_b])}
            row["verdict"] = _array_verdict(stage, ctx, row, wa[key], wb[key_b])
        per_var.append(row)
        if first is None and row["verdict"] in ("differs", "missing"):
            first = row
    worst_ulp = max((r.get("max_ulp_diff") or 0 for r in per_var), default=0)
    worst_abs = max((r.get("max_abs_diff") or 0.0 for r in per_var), default=0.0)
    details = {"variables": per_var, "max_ulp_diff": worst_ulp, "max_abs_diff": worst_abs, "rtol": rtol, "atol": atol}
    n_diff = sum(1 for r in per_var if not r["identical"])
    if first is None:
        verdict = "identical" if n_diff == 0 else "within_tolerance"
        return _result(stage, verdict, f"{len(per_var)} variables, " +
                       ("all bit-identical" if n_diff == 0 else
                        f"{n_diff} differ within rtol {rtol:g} atol {atol:g} (max ulp {worst_ulp})"), **details)
    if first["verdict"] == "missing":
        return _result(stage, "differs", f"variable {first['variable']} missing in {first['missing_in']}",
                       location=first["variable"], **details)
    if first.get("max_abs_diff") is None:
        return _result(stage, "differs", f"variable {first['variable']}: shape {first['shape_a']} vs {first['shape_b']}",
                       location=first["variable"], **details)
    return _result(stage, "differs",
                   f"{n_diff} of {len(per_var)} variables differ; first {first['variable']}: max ulp "
                   f"{first['max_ulp_diff']}, max abs {fmt(first['max_abs_diff'])}, rel L2 {fmt(first['rel_l2'])}",
                   location=first["variable"], **details)


@stage("forward", title="forward pass on the fixed batch, layer by layer", phase="build",
       files=("forward_fixed.npy", "forward_layers.json", "forward_layers.npz"), tolerance=(1e-6, 1e-6))
def compare_forward(ref, cand, ctx: Context) -> dict:
    """Output of the initial model on the manifest's fixed batch, and every layer's output on it
    (forward_layers): the first layer in graph order whose output differs, paired by place as in the
    architecture stage."""
    a, b = ref.npy("forward_fixed.npy"), cand.npy("forward_fixed.npy")
    if a is None or b is None:
        return _missing("forward", ref, cand, "forward_fixed.npy")
    la, lb = ref.json("forward_layers.json"), cand.json("forward_layers.json")
    za, zb = ref.npz("forward_layers.npz"), cand.npz("forward_layers.npz")
    if la is None or lb is None or za is None or zb is None:
        return _missing("forward", ref, cand, "forward_layers.json" if la is None or lb is None else
                        "forward_layers.npz")
    d = array_diff(a, b)
    verdict = _array_verdict("forward", ctx, d, a, b)
    layers = compare_layers(la.get("layers", []), lb.get("layers", []), za, zb, ctx, ref.name, cand.name)
    first = next((row for row in layers if row["verdict"] == "differs"), None)
    n_diff = sum(1 for row in layers if not row["identical"])
    details = {**d, "layers": layers, "layers_differ": n_diff}
    if first is not None:
        return _result("forward", "differs", f"first differing layer: {layer_text(first)}; output: " +
                       (f"shape {d.get('shape_a')} vs {d.get('shape_b')}" if d["max_abs_diff"] is None else
                        f"max ulp {d['max_ulp_diff']}, max abs {fmt(d['max_abs_diff'])}"),
                       location=f"layer {first['layer']} {first['name']}", first_layer=first, **details)
    if verdict == "identical" and n_diff == 0:
        return _result("forward", verdict, f"output {tuple(a.shape)} and all {len(layers)} layers' outputs "
                       "bit-identical", **details)
    loc = None
    if d["max_abs_diff"] is not None and a.ndim >= 1 and verdict == "differs":
        per_sample = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(len(a), -1).max(axis=1)
        loc = f"sample {int(np.argmax(per_sample > 0))}"
    summary = (f"output shape {d.get('shape_a')} vs {d.get('shape_b')}" if d["max_abs_diff"] is None else
               f"max ulp {d['max_ulp_diff']}, max abs {fmt(d['max_abs_diff'])}, rel L2 {fmt(d['rel_l2'])}")
    if n_diff:
        summary += f"; {n_diff} of {len(layers)} layers differ within tolerance"
    return _result("forward", verdict, summary, location=loc, **details)


def compare_layers(la: list, lb: list, za, zb, ctx: Context, name_a: str, name_b: str) -> list[dict]:
    """One row per layer of forward_layers.json, paired by place: identical when the sha256 of the whole output
    is; else the difference of what both kept (the whole output, or the same evenly spaced sample) and a verdict
    by the forward stage's tolerance. A difference only outside the sample shows as ``sampled_equal``."""
    rows = []
    for i in range(max(len(la), len(lb))):
        xa = la[i] if i < len(la) else None
        xb = lb[i] if i < len(lb) else None
        present = xa or xb
        # Numbered as the architecture stage numbers them: the place in the graph, its inputs included.
        row = {"layer": int(present.get("index", i)) + 1, "name": present.get("name"),
               "class_name": present.get("class_name")}
        if xa is not None and xb is not None and xa.get("name") != xb.get("name"):
            row["name_" + name_b] = xb.get("name")
        if xa is None or xb is None:
            rows.append({**row, "identical": False, "verdict": "differs",
                         "why": f"only {name_a if xa else name_b} has this layer"})
            continue
        if xa.get("class_name") != xb.get("class_name") or xa.get("shape") != xb.get("shape"):
            why = f"{xa.get('class_name')} {xa.get('shape')} vs {xb.get('class_name')} {xb.get('shape')}"
            rows.append({**row, "identical": False, "verdict": "differs", "why": why})
            continue
        if xa.get("sha256") == xb.get("sha256"):
            rows.append({**row, "identical": True, "verdict": "identical", "stored": xa.get("stored")})
            continue
        va, vb = za[xa["key"]], zb[xb["key"]]
        diff = array_diff(va, vb)
        verdict = _array_verdict("forward", ctx, diff, va, vb)
        # The hashes differ: a difference even where the kept values agree (outside the sample).
        row.update({"identical": False, "stored": xa.get("stored"), "values_kept": int(va.size),
                    "values": int(np.prod(xa.get("shape") or [0])), "max_ulp_diff": diff.get("max_ulp_diff"),
                    "max_abs_diff": diff.get("max_abs_diff"), "n_differ": diff.get("n_differ"),
                    "sampled_equal": bool(diff.get("identical"))})
        if verdict == "identical":  # equal where kept, but not the same bits
            verdict = "differs" if ctx.mode == "strict" else "within_tolerance"
        row["verdict"] = verdict
        rows.append(row)
    return rows


def layer_text(row: dict) -> str:
    """One layer row of ``compare_layers`` in a summary: place, name, class and its difference."""
    head = f"layer {row['layer']} {row['name']} ({row['class_name']})"
    if row.get("why"):
        return f"{head}: {row['why']}"
    if row.get("sampled_equal"):
        return (f"{head}: its output's sha256 differs, the {row['values_kept']:,} sampled of {row['values']:,} "
                "values are equal")
    kept = "all" if row.get("stored") == "full" else f"{row['values_kept']:,} sampled of"
    return (f"{head}: max ulp {row['max_ulp_diff']}, max abs {fmt(row['max_abs_diff'])} ({row['n_differ']:,} of "
            f"{kept} {row['values']:,} values differ)")


@stage("batch_losses", title="loss of every batch", phase="train", files=("batch_losses.npy",),
       tolerance=(1e-3, 1e-3))
def compare_batch_losses(ref, cand, ctx: Context) -> dict:
    """The loss of every (epoch, batch)'s training step (``make_train_step``); the first that differs."""
    a, b = ref.npy("batch_losses.npy"), cand.npy("batch_losses.npy")
    if a is None or b is None:
        return _missing("batch_losses", ref, cand, "batch_losses.npy")
    d = array_diff(a, b)
    if d["max_abs_diff"] is None:
        return _result("batch_losses", "differs", f"shape {d['shape_a']} vs {d['shape_b']} (epochs, batches)",
                       location="shape", **d)
    verdict = _array_verdict("batch_losses", ctx, d, a, b)
    if verdict == "identical":
        return _result("batch_losses", verdict, f"{a.size} batch losses bit-identical", **d)
    rtol, atol = _tol(ctx, "batch_losses")
    if verdict == "within_tolerance":
        return _result("batch_losses", verdict, f"max abs {fmt(d['max_abs_diff'])} within rtol {rtol:g}", **d)
    bad = (a.view(np.uint32) != b.view(np.uint32)) if ctx.mode == "strict" else ~np.isclose(b, a, rtol=rtol, atol=atol)
    e, i = (int(v) for v in np.argwhere(bad)[0])
    return _result("batch_losses", "differs",
                   f"epoch {e + 1} batch {i + 1}: {a[e, i]!s} vs {b[e, i]!s} "
                   f"({max_ulp_diff(a[e, i:i + 1], b[e, i:i + 1])} ulp); max abs {fmt(d['max_abs_diff'])}",
                   location=f"epoch {e + 1} batch {i + 1}", epoch=e + 1, batch=i + 1, **d)


@stage("final_weights", title="final weights", phase="save", files=("weights_final.npz",), tolerance=(1e-3, 1e-3))
def compare_final_weights(ref, cand, ctx: Context) -> dict:
    """Every variable of the trained model."""
    return compare_weights("final_weights", "weights_final.npz", ref, cand, ctx)


@stage("predictions", title="predictions", phase="evaluation", files=("predictions_val.npy",),
       tolerance=(1e-3, 1e-3))
def compare_predictions(ref, cand, ctx: Context) -> dict:
    """Final predicted probabilities of the val tiles, and the share of pixels whose class (probability > the
    rules' class_threshold) differs."""
    tile_ids = (ctx.manifest or {}).get("val")
    threshold = (ctx.rules or load_rules())["class_threshold"]
    a, b = ref.npy("predictions_val.npy"), cand.npy("predictions_val.npy")
    if a is None or b is None:
        return _missing("predictions", ref, cand, "predictions_val.npy")
    d = array_diff(a, b)
    if d["max_abs_diff"] is None:
        return _result("predictions", "differs", f"shape {d['shape_a']} vs {d['shape_b']}", location="shape", **d)
    cls_diff = (a > threshold) != (b > threshold)
    share = float(cls_diff.mean()) if a.size else 0.0
    per_tile = cls_diff.reshape(len(a), -1).mean(axis=1).tolist() if a.ndim >= 2 else []
    d.update(class_differ_share=share, class_differ_per_tile=per_tile)
    verdict = _array_verdict("predictions", ctx, d, a, b)
    if verdict == "within_tolerance" and share > DEFAULT_CLASS_SHARE:
        verdict = "differs"
    summary = (f"{a.shape[0]} val tiles; max abs {fmt(d['max_abs_diff'])}, "
               f"{share:.4%} of pixels change class")
    loc = None
    if verdict == "differs":
        pix = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(len(a), -1).max(axis=1)
        k = int(np.argmax(pix > 0))
        loc = f"val tile {tile_ids[k] if tile_ids and k < len(tile_ids) else k}"
    return _result("predictions", verdict, "bit-identical; " + summary if verdict == "identical" else summary,
                   location=loc, **d)


METRIC_KEYS = ("loss", "accuracy", "iou", "f1", "precision", "recall")


@stage("metrics", title="metrics per epoch", phase="train", files=("metrics.json",), tolerance=(1e-3, 1e-3))
def compare_metrics(ref, cand, ctx: Context) -> dict:
    """Metrics per epoch (train: the epoch's mean batch loss; val: counted) and the final train and val metrics;
    the first (epoch, split, metric) that differs."""
    ma, mb = ref.json("metrics.json"), cand.json("metrics.json")
    if ma is None or mb is None:
        return _missing("metrics", ref, cand, "metrics.json")
    ea, eb = ma.get("epochs", []), mb.get("epochs", [])
    rtol, atol = _tol(ctx, "metrics")
    worst = 0.0
    first = None
    if len(ea) != len(eb):
        return _result("metrics", "differs", f"{len(ea)} vs {len(eb)} epochs", location="epochs")
    any_diff = False
    # The final block (train metrics counted once, at the end) is compared as one more row, labelled "final".
    rows = list(zip(ea, eb)) + [(dict(ma.get("final") or {}, epoch="final"), dict(mb.get("final") or {}, epoch="final"))]
    for xa, xb in rows:
        for split in ("train", "val"):
            for key in sorted(set(xa.get(split, {})) | set(xb.get(split, {}))):
                va, vb = xa.get(split, {}).get(key), xb.get(split, {}).get(key)
                if va == vb:
                    continue
                any_diff = True
                if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)):
                    ok = False
                else:
                    worst = max(worst, abs(va - vb))
                    ok = ctx.mode == "tolerance" and math.isclose(vb, va, rel_tol=rtol, abs_tol=atol)
                if not ok and first is None:
                    first = (xa.get("epoch"), split, key, va, vb)
    details = {"epochs": len(ea), "max_abs_diff": worst}
    if first is None:
        return _result("metrics", "identical" if not any_diff else "within_tolerance",
                       f"{len(ea)} epochs, train and val metrics " +
                       ("identical" if not any_diff else f"within rtol {rtol:g} (max abs {fmt(worst)})"), **details)
    epoch, split, key, va, vb = first
    return _result("metrics", "differs", f"epoch {epoch} {split} {key}: {va!r} vs {vb!r}",
                   location=f"epoch {epoch} {split} {key}", epoch=epoch, **details)


# timings, memory and environment are written last, at "done": they stand with the last stage.
@stage("saved_models", title="saved models, loaded by the other language", phase="save",
       files=("model.keras", "crossload.json", "timings.json", "memory.json", "environment.json"),
       tolerance=(1e-6, 1e-6))
def compare_saved_models(ref, cand, ctx: Context) -> dict:
    """Each saved model, loaded by each language, must predict the fixed batch like the worker that saved it.

    Reads ``crossload.json`` in each worker folder: ``{"<loader>": {"ok", "error", "file"}}``, where ``file``
    (a .npy beside it) holds the loaded model's output on the fixed batch, and ``"self"`` is the worker's own.
    """
    rows = []
    for w in (ref, cand):
        cl = w.json("crossload.json")
        if cl is None:
            return _missing("saved_models", ref, cand, "crossload.json")
        own = w.npy(cl["self"]["file"]) if cl.get("self", {}).get("ok") else None
        for loader, rec in cl.items():
            if loader == "self":
                continue
            row = {"model": w.name, "loader": loader, "ok": bool(rec.get("ok")), "error": rec.get("error")}
            if rec.get("ok") and own is not None:
                got = w.npy(rec["file"])
                row.update(array_diff(own, got))
                row["verdict"] = _array_verdict("saved_models", ctx, row, own, got)
            else:
                row["verdict"] = "differs"
                row["error"] = row["error"] or "the saving worker's own prediction is missing"
            rows.append(row)
    bad = [r for r in rows if r["verdict"] == "differs"]
    details = {"loads": rows}
    if not bad:
        verdict = "identical" if all(r["verdict"] == "identical" for r in rows) else "within_tolerance"
        return _result("saved_models", verdict, f"{len(rows)} cross-loads predict the fixed batch "
                       + ("bit-identically" if verdict == "identical" else "within tolerance"), **details)
    r = bad[0]
    why = r["error"] or f"max ulp {r.get('max_ulp_diff')}, max abs {fmt(r.get('max_abs_diff'))}"
    return _result("saved_models", "differs", f"model of {r['model']} loaded in {r['loader']}: {why}",
                   location=f"{r['model']} in {r['loader']}", **details)


# Derived from the registry, for callers: the stage names in data-flow order, and the default tolerances.
STAGES = list(REGISTRY)
DEFAULT_TOLERANCES = {name: st.tolerance for name, st in REGISTRY.items() if st.tolerance is not None}


def failed_at(phase: str | None) -> str:
    """The stage at which a worker that failed in ``phase`` is reported: the first stage, in data-flow order,
    whose evidence that phase writes, else the first written after it (a phase no worker names: the first)."""
    if phase not in PHASES:
        return STAGES[0]
    later = [st for st in REGISTRY.values() if PHASES.index(st.phase) >= PHASES.index(phase)]
    exact = [st for st in later if st.phase == phase]
    return (exact or later or [REGISTRY[STAGES[-1]]])[0].name


def compare_pair(ref: WorkerFolder, cand: WorkerFolder, mode: str = "strict", tolerances: dict | None = None,
                 manifest: dict | None = None, stages_to_check: list[str] | None = None,
                 rules: dict | None = None) -> dict:
    """All stages (or ``stages_to_check``) for one candidate worker against the reference; names the first
    divergence."""
    if mode not in MODES:
        raise CompareError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    # Statistical mode compares distributions (compare_statistical); per pair, report like tolerance mode.
    ctx = Context("tolerance" if mode == "statistical" else mode, {**DEFAULT_TOLERANCES, **(tolerances or {})},
                  manifest, rules)
    # The earliest failure of the two workers: its stage is "failed", the stages it did not reach "skipped".
    failure = None
    for w in (ref, cand):
        if not w.ok:
            phase = w.status.get("phase")
            at = failed_at(phase)
            if failure is None or STAGES.index(at) < STAGES.index(failure[0]):
                failure = (at, w, phase if phase in PHASES else PHASES[0])
    stages = []
    for name in stages_to_check or STAGES:
        if failure is not None:
            at, w, phase = failure
            st = w.status
            if name == at:
                stages.append(_result(name, "failed", f"worker {w.name} failed in phase {st.get('phase') or 'start'}: "
                                                      f"{_one_line(st.get('error'))}", location=f"worker {w.name}",
                                      returncode=st.get("returncode"), stderr_tail=st.get("stderr_tail")))
                continue
            if PHASES.index(REGISTRY[name].phase) >= PHASES.index(phase):
                stages.append(_result(name, "skipped", f"not reached: worker {w.name} failed in phase "
                                                       f"{st.get('phase') or 'start'}"))
                continue
        gone = missing_evidence(name, ref, cand)
        if gone is not None:  # no verdict without evidence: a required file that is missing fails its stage
            stages.append(gone)
            continue
        try:
            stages.append(REGISTRY[name].compare(ref, cand, ctx))
        except Exception as exc:  # recorded as the stage's "error" result: one unreadable file must not hide the rest
            stages.append(_result(name, "error", f"could not compare: {type(exc).__name__}: {exc}"))
    first = next((s for s in stages if not s["ok"] and s["verdict"] != "skipped"), None)
    return {"reference": ref.name, "candidate": cand.name, "mode": mode, "stages": stages,
            "ok": all(s["ok"] for s in stages),
            "first_divergence": None if first is None else {
                "stage": first["stage"], "location": first["location"], "verdict": first["verdict"],
                "summary": first["summary"]}}


def _one_line(text) -> str:
    lines = [ln.strip() for ln in str(text or "unknown error").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "unknown error"


# ---------------------------------------------------------------------------------------------- statistics

def final_val(worker: WorkerFolder) -> dict | None:
    """Final-epoch validation loss and IoU of one worker, or None."""
    m = worker.json("metrics.json")
    if not m or not m.get("epochs"):
        return None
    val = m["epochs"][-1].get("val", {})
    return {"loss": val.get("loss"), "iou": val.get("iou")}


def compare_statistical(groups: dict[str, list[WorkerFolder]], reference: str, alpha: float = STAT_ALPHA) -> dict:
    """N seeds per language: final val IoU and loss, Welch's two-sample t-test against the reference at alpha.

    In the spirit of MLPerf's reference convergence checks: with parity on the bits impossible, the two
    languages must at least reach indistinguishable results over seeds. ``groups``: impl -> worker folders.
    """
    from scipy import stats

    def values(ws, key):
        return [v[key] for v in (final_val(w) for w in ws if w.ok) if v and v.get(key) is not None]

    out = {"alpha": alpha, "reference": reference, "test": "Welch two-sample t-test (two-sided)", "tests": []}
    ref_ws = groups.get(reference, [])
    for impl, ws in groups.items():
        if impl == reference:
            continue
        for key in ("iou", "loss"):
            a, b = values(ref_ws, key), values(ws, key)
            row = {"candidate": impl, "metric": f"val_{key}", "n_reference": len(a), "n_candidate": len(b),
                   "mean_reference": float(np.mean(a)) if a else None, "mean_candidate": float(np.mean(b)) if b else None,
                   "std_reference": float(np.std(a, ddof=1)) if len(a) > 1 else None,
                   "std_candidate": float(np.std(b, ddof=1)) if len(b) > 1 else None,
                   "reference_values": a, "candidate_values": b}
            if len(a) < 2 or len(b) < 2:
                row.update(p_value=None, ok=False, summary=f"val {key}: needs at least 2 finished seeds per language")
            elif np.array_equal(a, b) or (np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]):
                row.update(statistic=0.0, p_value=1.0, ok=True, summary=f"val {key}: identical values")
            else:
                res = stats.ttest_ind(a, b, equal_var=False)
                p = float(res.pvalue) if np.isfinite(res.pvalue) else 0.0
                row.update(statistic=float(res.statistic), p_value=p, ok=p >= alpha,
                           summary=f"val {key}: mean {np.mean(a):.4f} vs {np.mean(b):.4f}, p = {p:.3g}")
            out["tests"].append(row)
    out["ok"] = bool(out["tests"]) and all(t["ok"] for t in out["tests"])
    return out


# ---------------------------------------------------------------------------------------------- run level

def compare_workers(workers: list[WorkerFolder], mode: str = "strict", tolerances: dict | None = None,
                    manifest: dict | None = None, repeats: dict[str, list[WorkerFolder]] | None = None,
                    statistical_groups: dict[str, list[WorkerFolder]] | None = None,
                    rules: dict | None = None) -> dict:
    """Compare every worker with the first (the reference); repeats of one impl are compared with its first.

    Returns the ``comparison.json`` document: pairs, the overall verdict, the first divergence and a one-line
    summary such as ``PARITY: bit-identical across python, r-rpy2, r-rscript``.
    """
    if not workers:
        raise CompareError("no worker folders to compare")
    ref = workers[0]
    pairs = [compare_pair(ref, w, mode, tolerances, manifest, rules=rules) for w in workers[1:]]
    if len(workers) == 1:
        # A single worker: its own stages can still fail (a crashed worker); compare it with itself.
        pairs = [compare_pair(ref, ref, mode, tolerances, manifest, rules=rules)]
        pairs[0]["candidate"] = ref.name
    repeat_pairs = []
    for impl, ws in (repeats or {}).items():
        for w in ws[1:]:
            # Only the first repeat's models are cross-loaded; repeats check run-to-run determinism.
            p = compare_pair(ws[0], w, "strict", tolerances, manifest,
                             stages_to_check=[s for s in STAGES if s != "saved_models"], rules=rules)
            p["kind"] = "repeat"
            repeat_pairs.append(p)
    stats_doc = compare_statistical(statistical_groups, ref.name) if statistical_groups else None
    doc = {"schema": SCHEMA, "version": VERSION, "mode": mode, "reference": ref.name,
           "workers": [w.name for w in workers], "stages": STAGES,
           "tolerances": {k: list(v) for k, v in {**DEFAULT_TOLERANCES, **(tolerances or {})}.items()},
           "pairs": pairs, "repeats": repeat_pairs, "statistical": stats_doc}
    doc.update(verdict_of(doc))
    return doc


def first_divergence(pairs: list[dict]) -> dict | None:
    """The earliest stage (then epoch/batch/layer, as each stage orders them) at which any pair diverged."""
    found = [dict(p["first_divergence"], candidate=p["candidate"], reference=p["reference"])
             for p in pairs if p.get("first_divergence")]
    if not found:
        return None
    return min(found, key=lambda f: STAGES.index(f["stage"]))


def verdict_of(doc: dict) -> dict:
    """Overall ok flag, first divergence and the one-line verdict of a comparison document."""
    names = ", ".join(doc["workers"])
    n = len(doc["workers"])
    mode = doc["mode"]
    pairs = doc["pairs"]
    first = first_divergence(pairs)
    rep_first = first_divergence(doc.get("repeats") or [])
    if mode == "statistical":
        st = doc.get("statistical") or {"ok": False, "tests": []}
        ok = bool(st.get("ok"))
        if ok:
            line = (f"PARITY (statistical): no difference in final val IoU or loss at alpha "
                    f"{st.get('alpha', STAT_ALPHA)} across {names}")
        else:
            bad = next((t for t in st.get("tests", []) if not t["ok"]), None)
            line = ("DIVERGED (statistical): " + (f"{bad['candidate']} {bad['summary']}" if bad else
                                                  "no statistical test could run"))
        return {"ok": ok, "first_divergence": first, "verdict": line}
    if first is None and rep_first is None and n == 1:
        # One worker is no parity claim: say so rather than "bit-identical across python".
        return {"ok": True, "first_divergence": None,
                "verdict": f"NO COMPARISON: only {names} ran ({mode}); give --impls with two or more workers"}
    if first is None and rep_first is None:
        word = "bit-identical" if all(s["verdict"] == "identical"
                                      for p in pairs for s in p["stages"]) else "within tolerance"
        return {"ok": True, "first_divergence": None,
                "verdict": f"PARITY: {word} across {names} ({mode}, {n} worker{'s' if n != 1 else ''})"}
    if first is not None and first.get("verdict") == "failed":
        # A worker that failed is no divergence: say FAILED (as a sweep's cell does), its error, and where to look.
        return {"ok": False, "first_divergence": first,
                "verdict": f"FAILED: {first['summary']} (its whole output: worker_output.log in its folder under "
                           "workers/; `tailings-parity doctor` checks the R and Python set-up)"}
    if first is None:
        first = rep_first
        prefix = f"NOT REPRODUCIBLE: repeats of {first['reference']} differ"
    else:
        prefix = f"DIVERGED: {first['candidate']} vs {first['reference']}"
    loc = f", {first['location']}" if first.get("location") else ""
    return {"ok": False, "first_divergence": first,
            "verdict": f"{prefix} at stage {first['stage']}{loc}: {first['summary']}"}


def write_comparison(doc: dict, path: Path | str) -> None:
    """Write ``comparison.json``."""
    Path(path).write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
