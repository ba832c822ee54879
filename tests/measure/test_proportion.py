"""Wilson interval of a proportion against statsmodels and its coverage."""

from __future__ import annotations

import numpy as np
import pytest

from measure import wilson_interval


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 20), (10, 10), (1, 1), (57, 300)])
def test_matches_statsmodels(x, n):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    low, high = proportion.proportion_confint(x, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(wilson_interval(x, n), [low, high], atol=1e-12)


def test_vectorised_empty_and_bad_input():
    out = wilson_interval(np.array([[0, 5], [2, 0]]), np.array([[10, 10], [4, 0]]))
    assert out.shape == (2, 2, 2)
    assert np.isnan(out[1, 1]).all()
    assert out[0, 0, 0] == 0.0 and 0.0 < out[0, 0, 1] < 0.35
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_coverage_is_about_95_percent():
    rng = np.random.default_rng(0)
    p, n = 0.15, 40
    x = rng.binomial(n, p, 20000)
    ci = wilson_interval(x, n)
    cover = np.mean((ci[:, 0] <= p) & (p <= ci[:, 1]))
    assert 0.93 <= cover <= 0.97
