"""The array differences of parity/artifacts/diffs.py on small arrays made here, with the numbers worked out by
hand: bit identity (-0.0, NaN), ULP distances, max abs, relative L2, the first difference, weight archives and
numpy.allclose tolerance. Every comparison stage reports these numbers, so a wrong one misreports every stage.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from parity.artifacts import diffs

ONE_ULP_ABOVE_1 = float(np.nextafter(np.float32(1), np.float32(2)))  # 1 + 2^-23


def test_bits_equal_wants_the_same_shape_dtype_and_bytes():
    """Bit equality: shape, dtype and bytes; views compare by value; -0.0 is not 0.0, NaN is NaN."""
    a = np.float32([[1, 2], [3, 4]])
    assert diffs.bits_equal(a, a.copy())
    assert not diffs.bits_equal(a, a.astype(np.float64))              # the same numbers in another dtype
    assert not diffs.bits_equal(a, a.reshape(4))                       # the same bytes in another shape
    assert not diffs.bits_equal(np.float32([-0.0]), np.float32([0.0]))  # equal numbers, other bits
    assert diffs.bits_equal(np.float32([np.nan]), np.float32([np.nan]))
    wide = np.float32([[1, 9, 2], [3, 9, 4]])
    assert diffs.bits_equal(wide[:, [0, 2]], a) and diffs.bits_equal(wide[:, ::2], a)  # views compare by value


def test_ordered_int_counts_float32_steps_from_zero():
    """+0.0 and -0.0 are 0, the smallest subnormals are +-1, 1.0 is its bit pattern (0x3F800000), and the
    order of the floats is kept across zero."""
    x = np.float32([0.0, -0.0, 1.4e-45, -1.4e-45, 1.0, -1.0])
    got = diffs.ordered_int(x)
    assert got.dtype == np.int64
    assert got.tolist() == [0, 0, 1, -1, 0x3F800000, -0x3F800000]
    ladder = np.float32([-np.inf, -3.5, -1e-40, -0.0, 1e-40, 2.0, np.inf])
    assert np.all(np.diff(diffs.ordered_int(ladder)) > 0)


@pytest.mark.parametrize("a, b, ulp", [
    ([1.0], [ONE_ULP_ABOVE_1], 1),
    ([1.0], [2.0], 2 ** 23),                      # one binade: 2^23 steps
    ([-1.0], [1.0], 2 * 0x3F800000),              # across zero, counted on both sides
    ([1.0, 5.0, -2.0], [1.0, 5.0, -2.0], 0),
    ([0.0, 3.0], [-0.0, 3.0], 0),                 # -0.0 and +0.0 are one value
    ([], [], 0),
])
def test_max_ulp_diff(a, b, ulp):
    """ULP distances counted by hand: 1 step, one binade (2^23), across zero, none."""
    assert diffs.max_ulp_diff(np.float32(a), np.float32(b)) == ulp


def test_max_ulp_diff_casts_to_float32_and_takes_the_largest():
    """float64 inputs are measured in float32 steps; the result is the largest over the array, a Python int."""
    got = diffs.max_ulp_diff(np.float64([1.0, 1.0, 3.0]), np.float64([ONE_ULP_ABOVE_1, 1.0, 3.0]))
    assert got == 1 and type(got) is int
    assert diffs.max_ulp_diff(np.float32([1.0, 2.0]), np.float32([ONE_ULP_ABOVE_1, 4.0])) == 2 ** 23


def test_array_diff_of_identical_arrays():
    """Equal arrays: identical, every difference 0."""
    a = np.float32([[3, 4], [0, 0]])
    assert diffs.array_diff(a, a.copy()) == {"shape": [2, 2], "size": 4, "identical": True, "n_differ": 0,
                                             "max_abs_diff": 0.0, "max_ulp_diff": 0, "rel_l2": 0.0}


def test_array_diff_of_one_ulp():
    """1 ULP above 1.0 is 2^-23 away; relative L2 is that over the norm of the reference (here 1)."""
    d = diffs.array_diff(np.float32([1.0, 0.0]), np.float32([ONE_ULP_ABOVE_1, 0.0]))
    assert d == {"shape": [2], "size": 2, "identical": False, "n_differ": 1, "max_abs_diff": 2.0 ** -23,
                 "max_ulp_diff": 1, "rel_l2": 2.0 ** -23}


def test_array_diff_of_one_changed_value():
    """[3, 4] vs [3, 5]: one element, max abs 1, relative L2 |(0, 1)| / |(3, 4)| = 1/5, 2^21 ULP (4 -> 5)."""
    d = diffs.array_diff(np.float32([3, 4]), np.float32([3, 5]))
    assert d == {"shape": [2], "size": 2, "identical": False, "n_differ": 1, "max_abs_diff": 1.0,
                 "max_ulp_diff": 2 ** 21, "rel_l2": 0.2}


def test_array_diff_relative_l2_takes_the_norm_of_the_first_array():
    """Relative L2 is over the first (reference) array's norm."""
    d = diffs.array_diff(np.float32([0, 2]), np.float32([0, 4]))
    assert d["rel_l2"] == 1.0
    assert diffs.array_diff(np.float32([0, 4]), np.float32([0, 2]))["rel_l2"] == 0.5


def test_array_diff_of_a_zero_reference():
    """All zeros against all zeros: relative L2 0; against anything else: infinite (no scale to divide by)."""
    assert diffs.array_diff(np.zeros(3, np.float32), np.zeros(3, np.float32))["rel_l2"] == 0.0
    d = diffs.array_diff(np.zeros(3, np.float32), np.float32([0, 0, 1e-30]))
    assert d["rel_l2"] == math.inf and not d["identical"] and d["n_differ"] == 1


def test_array_diff_counts_minus_zero_as_a_difference_of_no_size():
    """-0.0 against 0.0: a bit difference of size 0."""
    d = diffs.array_diff(np.float32([0.0, 1.0]), np.float32([-0.0, 1.0]))
    assert (d["identical"], d["n_differ"], d["max_abs_diff"], d["max_ulp_diff"], d["rel_l2"]) == (False, 1, 0.0, 0, 0.0)


def test_array_diff_treats_nan_in_the_same_place_as_equal():
    """NaN in the same place in both is the same value: identical, and it does not poison max abs or rel L2."""
    a = np.float32([np.nan, 2.0, 3.0])
    d = diffs.array_diff(a, a.copy())
    assert d == {"shape": [3], "size": 3, "identical": True, "n_differ": 0, "max_abs_diff": 0.0,
                 "max_ulp_diff": 0, "rel_l2": 0.0}
    d = diffs.array_diff(a, np.float32([np.nan, 2.0, 4.0]))
    assert (d["identical"], d["n_differ"], d["max_abs_diff"], d["max_ulp_diff"]) == (False, 1, 1.0, 2 ** 22)
    assert d["rel_l2"] == 1 / math.sqrt(13)  # |(0, 1)| / |(2, 3)|: the shared NaN is left out of both norms


def test_array_diff_compares_float64_inputs_as_float32():
    """Bits are those of float32 (what the workers write): float64 values that round to the same float32 are
    identical; max abs is taken in float64."""
    d = diffs.array_diff(np.float64([1.0, 2.0]), np.float64([1.0, 2.0 + 1e-12]))
    assert (d["identical"], d["n_differ"], d["max_ulp_diff"]) == (True, 0, 0)
    assert d["max_abs_diff"] == pytest.approx(1e-12)


def test_array_diff_of_nan_everywhere_in_both():
    d = diffs.array_diff(np.float32([np.nan, np.nan]), np.float32([np.nan, np.nan]))
    assert (d["identical"], d["max_abs_diff"], d["max_ulp_diff"], d["rel_l2"]) == (True, 0.0, 0, 0.0)


def test_array_diff_names_a_nan_on_one_side():
    """NaN against a number is a difference."""
    d = diffs.array_diff(np.float32([1.0, 2.0]), np.float32([1.0, np.nan]))
    assert not d["identical"] and d["n_differ"] == 1


def test_array_diff_of_a_shape_change():
    """No numbers for arrays of different shapes: both shapes, not identical, the size of the first."""
    d = diffs.array_diff(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    assert d == {"shape_a": [2, 3], "shape_b": [3, 2], "identical": False, "max_abs_diff": None,
                 "max_ulp_diff": None, "rel_l2": None, "n_differ": None, "size": 6}


def test_array_diff_of_empty_arrays():
    """Empty arrays are identical, every difference 0."""
    d = diffs.array_diff(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
    assert d == {"shape": [0, 4], "size": 0, "identical": True, "n_differ": 0, "max_abs_diff": 0.0,
                 "max_ulp_diff": 0, "rel_l2": 0.0}


def test_array_diff_returns_python_numbers():
    """The numbers are plain Python ints, floats and bools (comparison.json is written with json)."""
    d = diffs.array_diff(np.float32([1, 2]), np.float32([1, 3]))
    assert type(d["size"]) is int and type(d["n_differ"]) is int and type(d["identical"]) is bool
    assert type(d["max_abs_diff"]) is float and type(d["max_ulp_diff"]) is int and type(d["rel_l2"]) is float


def test_first_difference():
    """The first differing element in C order (its index and both values), the largest |a - b|, the largest ULP
    distance and how many differ; None for equal arrays; both shapes when they differ."""
    a = np.float32([[1, 2], [3, 4]])
    assert diffs.first_difference(a, a.copy()) is None
    got = diffs.first_difference(a, np.float32([[1, 2], [3.5, 5]]))
    assert got == {"index": [1, 0], "a": 3.0, "b": 3.5, "max_abs_diff": 1.0, "max_ulp_diff": 2 ** 21,
                   "n_differ": 2}
    assert diffs.first_difference(a, np.zeros((2, 3), np.float32)) == {"shape_a": [2, 2], "shape_b": [2, 3]}
    assert diffs.first_difference(np.float32([0.0]), np.float32([-0.0]))["n_differ"] == 1


def test_first_difference_of_infinities_is_quiet():
    """inf - inf in the same place is no difference and raises no floating-point warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = diffs.first_difference(np.float32([np.inf, 1.0]), np.float32([np.inf, 2.0]))
    assert got["index"] == [1] and got["max_abs_diff"] == 1.0 and got["n_differ"] == 1


def test_weights_diff_lines():
    """One line per variable that is not bit-identical; a changed variable list is one line."""
    k = np.float32([1, 2])
    assert diffs.weights_diff({"a/kernel": k, "a/bias": k}, {"a/kernel": k.copy(), "a/bias": k.copy()}) == []
    assert diffs.weights_diff({"a/kernel": k}, {"a/bias": k}) == ["variables differ: ['a/kernel'] vs ['a/bias']"]
    assert diffs.weights_diff({"x": k, "y": k}, {"y": k, "x": k}) == ["variables differ: ['x', 'y'] vs ['y', 'x']"]
    assert diffs.weights_diff({"a/kernel": k}, {"a/kernel": np.float32([1, 2, 3])}) == [
        "a/kernel float32(2,) vs float32(3,)"]
    assert diffs.weights_diff({"a/kernel": k}, {"a/kernel": k.astype(np.float64)}) == [
        "a/kernel float32(2,) vs float64(2,)"]
    up = np.float32([1, np.nextafter(np.float32(2), np.float32(3))])
    assert diffs.weights_diff({"a/kernel": k, "a/bias": k}, {"a/kernel": k, "a/bias": up}) == [
        "a/bias 1/2 elements differ, max |diff| 2.38e-07, max ulp 1"]


@pytest.mark.parametrize("a, b, rtol, atol, ok", [
    ([1.0], [1.0], 0.0, 0.0, True),
    ([1.0], [1.25], 0.0, 0.25, True),     # |a - b| <= atol, the bound included
    ([1.0], [1.5], 0.0, 0.25, False),
    ([0.0], [1.0], 1.0, 0.0, True),       # |a - b| <= rtol * |b|: b is the scale
    ([1.0], [0.0], 1.0, 0.0, False),      # ... so it is not symmetric
    ([1.0, 100.0], [1.0, 101.0], 0.02, 0.0, True),
    ([1.0, 100.0], [1.0, 101.0], 0.005, 0.0, False),
    ([np.nan], [np.nan], 0.0, 0.0, True),  # NaN in the same place is equal
    ([np.nan, 1.0], [1.0, 1.0], 1.0, 1.0, False),  # NaN against a number is not
    # Just beyond rtol * |b| computed in float64 (in float32, rtol * |b| rounds up far enough to admit it).
    ([0.7052233815193176], [0.5424795150756836], 0.3, 0.0, False),
])
def test_within_is_numpy_allclose(a, b, rtol, atol, ok):
    """|a - b| <= atol + rtol * |b| in float64, bounds included, NaN equal to NaN only."""
    a, b = np.float32(a), np.float32(b)
    assert diffs.within(diffs.array_diff(a, b), a, b, rtol, atol) is ok


def test_within_refuses_a_shape_change():
    """Arrays of different shapes are never within tolerance (array_diff has no max abs for them)."""
    a, b = np.zeros(2, np.float32), np.zeros(3, np.float32)
    assert diffs.within(diffs.array_diff(a, b), a, b, 1.0, 1.0) is False


@pytest.mark.parametrize("x, text", [(None, "n/a"), (0.000123456, "0.000123"), (12345.0, "1.23e+04"),
                                     (1 / 3, "0.333"), (0.0, "0"), (2.0, "2")])
def test_fmt(x, text):
    """Numbers in a summary: 3 significant digits; None is n/a."""
    assert diffs.fmt(x) == text
