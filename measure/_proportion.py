"""Confidence interval of a proportion (prevalence of instability per level)."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["wilson_interval"]


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, *, confidence: float = 0.95
) -> np.ndarray:
    """Wilson score interval of a binomial proportion, vectorised.

    Parameters
    ----------
    successes : array_like of int, shape (...)
        Number of positive cases (e.g. unstable segments at a level).
    n : array_like of int, shape (...)
        Number of cases, broadcastable with ``successes``.
    confidence : float, optional
        Level of the interval (0.95).

    Returns
    -------
    ndarray of shape (..., 2)
        Lower and upper bound, as fractions in [0, 1]; NaN where ``n == 0``.

    Raises
    ------
    ValueError
        ``successes`` outside ``[0, n]`` or ``confidence`` outside (0, 1).

    Notes
    -----
    With ``p = x / n`` and ``z`` the normal quantile,
    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` (Wilson 1927).  It
    stays inside [0, 1] and keeps its coverage near 95 % for small ``n`` and
    proportions near 0 or 1, where the Wald interval fails (Brown, Cai &
    DasGupta, Stat Sci 2001;16:101–133).

    Examples
    --------
    >>> [round(float(v), 4) for v in wilson_interval(3, 20)]
    [0.0524, 0.3604]
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    x, total = np.broadcast_arrays(np.asarray(successes, np.float64), np.asarray(n, np.float64))
    if np.any((x < 0) | (x > total)):
        raise ValueError("successes: expected 0 <= successes <= n")
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / total
        centre = (p + z**2 / (2 * total)) / (1 + z**2 / total)
        half = z * np.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / (1 + z**2 / total)
    # exact bounds at the ends (the formula gives them up to rounding)
    low = np.where(x == 0, 0.0, centre - half)
    high = np.where(x == total, 1.0, centre + half)
    out = np.stack([low, high], axis=-1)
    return np.where((total > 0)[..., None], np.clip(out, 0.0, 1.0), np.nan)
