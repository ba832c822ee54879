"""The one verdict rule (measure.segment_verdict): hand cases, strictness, and agreement
with the borderline/unstable flags segmental_motion computes by its own code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from measure import Verdict, quantity_verdicts, segment_verdict, segmental_motion, verdict_of_record
from tests.measure._spines import random_spines

V = Verdict


@pytest.mark.parametrize(
    ("value", "interval", "expected"),
    [
        (12.0, (11.0, 13.0), V.UNSTABLE),  # wholly above
        (10.2, (8.2, 12.2), V.BORDERLINE_ABOVE),  # the case: above, interval straddles
        (9.0, (7.0, 11.0), V.BORDERLINE_BELOW),
        (3.0, (1.0, 5.0), V.WITHIN),
        (10.0, (10.0, 10.0), V.WITHIN),  # "more than" is strict: exactly 10 is within
        (9.0, (8.0, 10.0), V.WITHIN),  # an interval ending on the threshold stays within
        (9.9, (9.8, 10.000001), V.BORDERLINE_BELOW),
        (10.1, (10.000001, 10.2), V.UNSTABLE),
        (-12.0, (-13.0, -11.0), V.UNSTABLE),  # magnitudes: reversed motion counts the same
        (-10.2, (-12.2, -8.2), V.BORDERLINE_ABOVE),
        (-3.0, (-5.0, -1.0), V.WITHIN),
        (-9.0, (-11.0, -7.0), V.BORDERLINE_BELOW),
        (0.5, (-10.5, 11.5), V.BORDERLINE_BELOW),  # interval reaching both thresholds
    ],
)
def test_one_quantity_against_ten_degrees(value, interval, expected):
    code = segment_verdict({"angulation_deg": value}, {"angulation_deg": 10.0}, {"angulation_deg": interval})
    assert Verdict(int(code)) is expected


def test_without_an_interval_the_value_decides():
    codes = segment_verdict(
        {"angulation_deg": [10.5, 10.0, -10.5, 2.0]},
        {"angulation_deg": 10.0},
        {"angulation_deg": np.full((4, 2), np.nan)},  # uncertainty unknown
    )
    assert [Verdict(int(c)) for c in codes] == [V.UNSTABLE, V.WITHIN, V.UNSTABLE, V.WITHIN]
    assert segment_verdict({"angulation_deg": 10.5}, {"angulation_deg": 10.0}) == V.UNSTABLE


def test_segment_takes_the_most_severe_quantity():
    values = {"translation_mm": [1.0, 5.0, 3.5, 1.0], "angulation_deg": [10.5, 3.0, 9.0, 2.0]}
    ci = {
        "translation_mm": [[0.0, 2.0], [4.5, 5.5], [2.0, 5.0], [0.0, 2.0]],
        "angulation_deg": [[8.0, 13.0], [1.0, 5.0], [7.0, 11.0], [0.0, 4.0]],
    }
    th = {"translation_mm": 4.0, "angulation_deg": 10.0}
    per = quantity_verdicts(values, th, ci)
    assert [Verdict(int(c)) for c in per["translation_mm"]] == [V.WITHIN, V.UNSTABLE, V.BORDERLINE_BELOW, V.WITHIN]
    assert [Verdict(int(c)) for c in per["angulation_deg"]] == [
        V.BORDERLINE_ABOVE, V.WITHIN, V.BORDERLINE_BELOW, V.WITHIN,
    ]  # fmt: skip
    seg = segment_verdict(values, th, ci)
    assert [Verdict(int(c)) for c in seg] == [V.BORDERLINE_ABOVE, V.UNSTABLE, V.BORDERLINE_BELOW, V.WITHIN]


def test_unused_criteria_and_missing_values():
    # no mm value (uncalibrated) and a mm-only translation criterion: angulation decides
    code = segment_verdict(
        {"translation_mm": math.nan, "angulation_deg": 3.0},
        {"translation_mm": 4.0, "angulation_deg": 10.0},
    )
    assert code == V.WITHIN
    # no threshold applies at all: not assessed, not "within"
    code = segment_verdict({"translation_mm": math.nan, "angulation_deg": 30.0}, {"translation_mm": 4.0})
    assert code == V.NOT_ASSESSED
    # no motion: not measured
    code = segment_verdict({"angulation_deg": math.nan}, {"angulation_deg": 10.0})
    assert code == V.NOT_MEASURED


def test_vectorised_over_studies_and_segments():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 8, (7, 5))
    half = rng.uniform(0, 4, (7, 5))
    ci = np.stack([values - half, values + half], axis=-1)
    codes = segment_verdict({"angulation_deg": values}, {"angulation_deg": 10.0}, {"angulation_deg": ci})
    assert codes.shape == (7, 5) and codes.dtype == np.int8
    for i in range(7):
        for k in range(5):
            one = segment_verdict({"angulation_deg": values[i, k]}, {"angulation_deg": 10.0},
                                  {"angulation_deg": ci[i, k]})
            assert codes[i, k] == one


def test_keys_and_labels_round_trip():
    assert [v.key for v in Verdict] == [
        "not-measured", "not-assessed", "within", "borderline-below", "borderline-above", "unstable",
    ]  # fmt: skip
    for v in Verdict:
        assert Verdict.from_key(v.key) is v
        assert Verdict.from_key(v.label) is v
    assert V.BORDERLINE_ABOVE.label == "BORDERLINE (ABOVE threshold)"
    assert V.BORDERLINE_ABOVE.is_borderline and not V.UNSTABLE.is_borderline
    with pytest.raises(ValueError, match="verdict: unknown"):
        Verdict.from_key("stable-ish")


@pytest.mark.parametrize("criteria", ["default", "white-panjabi"])
def test_agrees_with_the_flags_of_segmental_motion(criteria):
    """The motion's borderline/unstable flags come from separate code (_decision): the
    verdict must be their reading, on random spines with SDs that make all four
    categories occur."""
    rng = np.random.default_rng(11)
    flex, ext = random_spines(rng, 400, spacing=(0.15, 0.15))
    r = segmental_motion(flex, ext, (0.15, 0.15), criteria=criteria, landmark_sd_mm=rng.uniform(0.1, 1.5, (400, 1, 1)))
    code = r.verdict
    expected = np.where(
        r.borderline,
        np.where(r.unstable, V.BORDERLINE_ABOVE, V.BORDERLINE_BELOW),
        np.where(r.unstable, V.UNSTABLE, V.WITHIN),
    )
    np.testing.assert_array_equal(code, expected)
    assert {int(c) for c in np.unique(code)} >= {V.UNSTABLE, V.BORDERLINE_ABOVE, V.BORDERLINE_BELOW, V.WITHIN}
    # and the same verdict is recomputed from each JSON row
    for i in range(0, 400, 37):
        for k, row in enumerate(r.to_records(i)):
            assert row["verdict"] == Verdict(int(code[i, k])).key
            assert verdict_of_record(row) is Verdict(int(code[i, k]))
    # per-quantity verdicts: the segment is their maximum
    np.testing.assert_array_equal(np.maximum(r.translation_verdict, r.angulation_verdict), code)


def test_record_without_thresholds_falls_back_to_flags():
    assert verdict_of_record({"measured": True, "unstable": True, "borderline": True}) is V.BORDERLINE_ABOVE
    assert verdict_of_record({"measured": True, "unstable": False, "borderline": True}) is V.BORDERLINE_BELOW
    assert verdict_of_record({"measured": True, "unstable": True, "borderline": False}) is V.UNSTABLE
    assert verdict_of_record({"measured": True, "unstable": False}) is V.WITHIN
    assert verdict_of_record({"measured": False, "unstable": True}) is V.NOT_MEASURED
    assert verdict_of_record({"segment": "L4-L5"}) is V.NOT_MEASURED
