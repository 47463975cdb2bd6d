"""Differences between float arrays, in one place: bit identity, ULP distance, absolute and relative size.

Used by the stage comparison, the data comparison (R reader vs Python reader), the doctor's determinism check
and the tests. Bits are compared as unsigned integers, so -0.0 vs 0.0 and NaN payloads count as differences
(the bar of a parity suite); a NaN in the same place in both arrays is the same value.
"""

from __future__ import annotations

import math

import numpy as np


def bits_equal(a, b) -> bool:
    """Same shape, dtype and bytes: the strictest equality, and the one the CPU parity claims."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.ascontiguousarray(a).tobytes() == \
        np.ascontiguousarray(b).tobytes()


def ordered_int(x: np.ndarray) -> np.ndarray:
    """Map float32 values to int64 so that adjacent floats differ by 1 (the ULP distance is a subtraction)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    # Negative floats count downwards from zero; -0.0 and +0.0 both land on 0.
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def max_ulp_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance between ``a`` and ``b`` in units in the last place of float32."""
    if np.asarray(a).size == 0:
        return 0
    return int(np.max(np.abs(ordered_int(a) - ordered_int(b))))


def array_diff(a, b) -> dict:
    """Differences between two float arrays: bit-identical?, max abs, max ULP (float32), relative L2, count."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return {"shape_a": list(a.shape), "shape_b": list(b.shape), "identical": False,
                "max_abs_diff": None, "max_ulp_diff": None, "rel_l2": None, "n_differ": None, "size": int(a.size)}
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    b32 = np.ascontiguousarray(b, dtype=np.float32)
    both_nan = np.isnan(a32) & np.isnan(b32)
    differ = (a32.view(np.uint32) != b32.view(np.uint32)) & ~both_nan
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    delta = np.abs(a64 - b64)
    delta[both_nan] = 0.0
    # A NaN in the same place in both is the same value: left out of the reference's norm as out of the distance.
    norm = float(np.linalg.norm(a64[~both_nan].ravel()))
    dist = float(np.linalg.norm((a64 - b64)[~both_nan].ravel()))
    return {
        "shape": list(a.shape), "size": int(a.size), "identical": not bool(differ.any()),
        "n_differ": int(differ.sum()),
        "max_abs_diff": float(np.nanmax(delta)) if a.size else 0.0,
        "max_ulp_diff": max_ulp_diff(np.where(both_nan, 0, a32), np.where(both_nan, 0, b32)),
        "rel_l2": (dist / norm) if norm > 0 else (0.0 if dist == 0 else math.inf),
    }


def first_difference(a: np.ndarray, b: np.ndarray) -> dict | None:
    """Where two float32 arrays first differ in bits (C order): index, both values, largest |a - b|; None if equal."""
    if a.shape != b.shape:
        return {"shape_a": list(a.shape), "shape_b": list(b.shape)}
    differ = np.ascontiguousarray(a).view(np.uint32) != np.ascontiguousarray(b).view(np.uint32)
    if not differ.any():
        return None
    index = [int(i) for i in np.argwhere(differ)[0]]
    with np.errstate(invalid="ignore"):
        max_abs = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return {"index": index, "a": float(a[tuple(index)]), "b": float(b[tuple(index)]),
            "max_abs_diff": max_abs, "max_ulp_diff": max_ulp_diff(a, b), "n_differ": int(differ.sum())}


def weights_diff(a: dict, b: dict) -> list[str]:
    """Variables of two weight archives (name -> array) that are not bit-identical, one line each; [] if none."""
    if list(a) != list(b):
        return [f"variables differ: {list(a)} vs {list(b)}"]
    lines = []
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if x.shape != y.shape or x.dtype != y.dtype:
            lines.append(f"{key} {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        elif not bits_equal(x, y):
            d = array_diff(x, y)
            lines.append(f"{key} {d['n_differ']}/{d['size']} elements differ, max |diff| {fmt(d['max_abs_diff'])}, "
                         f"max ulp {d['max_ulp_diff']}")
    return lines


def within(diff: dict, a, b, rtol: float, atol: float) -> bool:
    """numpy.allclose semantics (``|a - b| <= atol + rtol * |b|``) on arrays whose diff is ``diff``."""
    if diff.get("max_abs_diff") is None:
        return False
    return bool(np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol,
                            equal_nan=True))


def fmt(x: float | None) -> str:
    """Short text of a number for a summary line."""
    if x is None:
        return "n/a"
    return f"{x:.3g}"
