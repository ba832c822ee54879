"""Agreement between readings of the same studies: ICC, Bland–Altman, SEM, kappa.

Reader-agreement studies of a measurement ask two questions: how well do
readers (or repeats, or a manual and an automatic method) *agree*, and how
large must a change be before it is more than measurement error.  The
functions here answer them for any batch of tables at once: every input has
leading batch axes ``...`` (one entry per level and quantity, say) and the
statistics come back with that batch shape.  Pure numpy/scipy, no loop over
targets or readers.

- :func:`intraclass_correlation`: two-way ANOVA ICC(2,1) (absolute agreement,
  random readers) and ICC(3,1) (consistency, fixed readers) with the F-based
  95 % intervals of McGraw & Wong (1996), the standard error of measurement
  and the smallest detectable change.
- :func:`bland_altman`: bias and 95 % limits of agreement of two readings
  with their confidence intervals (Bland & Altman 1986).
- :func:`cohen_kappa` (two readers) and :func:`fleiss_kappa` (two or more)
  for a categorical verdict such as *unstable*.

References
----------
.. [1] Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater
   reliability. Psychol Bull 1979;86:420–428.
.. [2] McGraw KO, Wong SP. Forming inferences about some intraclass correlation
   coefficients. Psychol Methods 1996;1:30–46 (correction 1996;1:390).
.. [3] Bland JM, Altman DG. Statistical methods for assessing agreement between
   two methods of clinical measurement. Lancet 1986;i:307–310.
.. [4] de Vet HCW, Terwee CB, Knol DL, Bouter LM. When to use agreement versus
   reliability measures. J Clin Epidemiol 2006;59:1033–1039.
.. [5] Cohen J. A coefficient of agreement for nominal scales. Educ Psychol
   Meas 1960;20:37–46.
.. [6] Fleiss JL. Measuring nominal scale agreement among many raters.
   Psychol Bull 1971;76:378–382.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "BlandAltman",
    "IntraclassCorrelation",
    "bland_altman",
    "cohen_kappa",
    "fleiss_kappa",
    "intraclass_correlation",
]

SDC_FACTOR = 1.96 * np.sqrt(2.0)
"""Smallest detectable change per unit of SEM: ``1.96 * sqrt(2)`` (a difference
of two measurements, each with error SD = SEM, at 95 %)."""


def _check_table(ratings: object, name: str, min_rows: int = 2) -> np.ndarray:
    table = np.asarray(ratings, dtype=np.float64)
    if table.ndim < 2:
        raise ValueError(f"{name}: expected shape (..., n_targets, n_readers), got {table.shape}")
    n, k = table.shape[-2:]
    if n < min_rows:
        raise ValueError(f"{name}: at least {min_rows} targets are needed, got {n}")
    if k < 2:
        raise ValueError(f"{name}: at least 2 readers are needed, got {k}")
    if not np.isfinite(table).all():
        raise ValueError(f"{name}: contains NaN or infinite values (drop incomplete targets first)")
    return table


@dataclass(frozen=True)
class IntraclassCorrelation:
    """Two-way ANOVA intraclass correlations of ``n`` targets read by ``k`` readers.

    Every attribute is an ndarray of the batch shape ``...`` of the input
    (``ci95`` attributes have a trailing axis of 2: lower, upper).

    Attributes
    ----------
    n_targets, n_readers : int
        ``n`` and ``k``.
    icc_2_1 : ndarray of shape (...)
        ICC(2,1) of Shrout & Fleiss, ICC(A,1) of McGraw & Wong: single
        reading, absolute agreement, readers a random sample.
    icc_2_1_ci95 : ndarray of shape (..., 2)
        Its 95 % interval (McGraw & Wong 1996, Table 7, case 2A).
    icc_3_1 : ndarray of shape (...)
        ICC(3,1) of Shrout & Fleiss, ICC(C,1) of McGraw & Wong: single
        reading, consistency, readers fixed.
    icc_3_1_ci95 : ndarray of shape (..., 2)
        Its 95 % interval (McGraw & Wong 1996, Table 7, case 3).
    f_value : ndarray of shape (...)
        ``MS_rows / MS_error``, the F statistic of the hypothesis ICC = 0.
    df_rows, df_error : int
        ``n - 1`` and ``(n - 1)(k - 1)``.
    p_value : ndarray of shape (...)
        One-sided p of ``f_value`` under ICC = 0.
    ms_rows, ms_readers, ms_error : ndarray of shape (...), unit²
        Mean squares of targets, readers and residual (Shrout & Fleiss' BMS, JMS, EMS).
    sem : ndarray of shape (...), unit of the ratings
        Standard error of measurement for agreement,
        ``sqrt(var_readers + var_error)`` with ``var_readers =
        max(0, (MS_readers - MS_error) / n)`` and ``var_error = MS_error``
        (de Vet et al. 2006): the SD of one reading about the target's true
        value, systematic reader differences included.
    sem_consistency : ndarray of shape (...), unit of the ratings
        ``sqrt(MS_error)``: the same without the readers' systematic
        differences (for two readers ``SD(differences) / sqrt(2)``).
    sdc : ndarray of shape (...), unit of the ratings
        Smallest detectable change ``1.96 * sqrt(2) * sem``: the smallest
        difference between two readings that exceeds measurement error with
        95 % confidence.
    """

    n_targets: int
    n_readers: int
    icc_2_1: np.ndarray
    icc_2_1_ci95: np.ndarray
    icc_3_1: np.ndarray
    icc_3_1_ci95: np.ndarray
    f_value: np.ndarray
    df_rows: int
    df_error: int
    p_value: np.ndarray
    ms_rows: np.ndarray
    ms_readers: np.ndarray
    ms_error: np.ndarray
    sem: np.ndarray
    sem_consistency: np.ndarray

    @property
    def sdc(self) -> np.ndarray:
        """Smallest detectable change, ``1.96 * sqrt(2) * sem`` (unit of the ratings)."""
        return SDC_FACTOR * self.sem

    @property
    def sdc_consistency(self) -> np.ndarray:
        """``1.96 * sqrt(2) * sem_consistency`` (unit of the ratings)."""
        return SDC_FACTOR * self.sem_consistency


def intraclass_correlation(
    ratings: np.ndarray, *, confidence: float = 0.95
) -> IntraclassCorrelation:
    """ICC(2,1) and ICC(3,1) with F-based intervals, SEM and SDC.

    Parameters
    ----------
    ratings : array_like of shape (..., n, k)
        ``ratings[..., i, j]`` is reader ``j``'s value for target ``i``
        (a study's segment), any unit; every batch entry is analysed on
        its own.  Complete tables only: drop targets a reader left out.
    confidence : float, optional
        Level of the intervals (0.95).

    Returns
    -------
    IntraclassCorrelation
        Arrays of the batch shape ``...``.

    Raises
    ------
    ValueError
        Fewer than 2 targets or readers, or a value that is not finite.

    Notes
    -----
    Two-way ANOVA without replication: with row (target) means ``r_i``,
    column (reader) means ``c_j`` and grand mean ``g``,
    ``MS_R = k Σ(r_i - g)² / (n-1)``, ``MS_C = n Σ(c_j - g)² / (k-1)``,
    ``MS_E = Σ(x_ij - r_i - c_j + g)² / ((n-1)(k-1))``, and

    - ``ICC(3,1) = (MS_R - MS_E) / (MS_R + (k-1) MS_E)``,
    - ``ICC(2,1) = (MS_R - MS_E) / (MS_R + (k-1) MS_E + k (MS_C - MS_E) / n)``.

    Intervals (McGraw & Wong 1996): for ICC(3,1) from ``F = MS_R / MS_E``
    with ``F_L = F / F_{1-α/2}(n-1, (n-1)(k-1))`` and
    ``F_U = F · F_{1-α/2}((n-1)(k-1), n-1)``, bound ``(F_* - 1) / (F_* + k - 1)``;
    for ICC(2,1) with Satterthwaite's degrees of freedom ``v`` of
    ``a MS_C + b MS_E``, ``a = k ρ / (n (1-ρ))``, ``b = 1 + k ρ (n-1) / (n (1-ρ))``,
    ``ρ`` the point estimate.

    References
    ----------
    Shrout & Fleiss 1979; McGraw & Wong 1996; de Vet et al. 2006 (module docstring).

    Examples
    --------
    Shrout & Fleiss' (1979) Table 2: six targets, four judges.

    >>> table = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...          [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> icc = intraclass_correlation(table)
    >>> round(float(icc.icc_2_1), 2), round(float(icc.icc_3_1), 2)
    (0.29, 0.71)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    x = _check_table(ratings, "ratings")
    n, k = x.shape[-2:]
    grand = x.mean(axis=(-2, -1), keepdims=True)
    row_means = x.mean(axis=-1, keepdims=True)
    col_means = x.mean(axis=-2, keepdims=True)
    df_r, df_c, df_e = n - 1, k - 1, (n - 1) * (k - 1)
    ss_r = k * ((row_means - grand) ** 2).sum(axis=(-2, -1))
    ss_c = n * ((col_means - grand) ** 2).sum(axis=(-2, -1))
    ss_e = ((x - row_means - col_means + grand) ** 2).sum(axis=(-2, -1))
    ms_r, ms_c, ms_e = ss_r / df_r, ss_c / df_c, ss_e / df_e

    with np.errstate(divide="ignore", invalid="ignore"):
        icc3 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e)
        icc2 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n)
        f_value = ms_r / ms_e
    p_value = stats.f.sf(f_value, df_r, df_e)
    q = 1.0 - (1.0 - confidence) / 2.0

    # ICC(3,1): exact F-based interval.
    with np.errstate(divide="ignore", invalid="ignore"):
        f_low = f_value / stats.f.ppf(q, df_r, df_e)
        f_up = f_value * stats.f.ppf(q, df_e, df_r)
        icc3_ci = np.stack([(f_low - 1) / (f_low + k - 1), (f_up - 1) / (f_up + k - 1)], axis=-1)

        # ICC(2,1): Satterthwaite's approximation (McGraw & Wong 1996, case 2A).
        a = k * icc2 / (n * (1.0 - icc2))
        b = 1.0 + k * icc2 * (n - 1) / (n * (1.0 - icc2))
        v = (a * ms_c + b * ms_e) ** 2 / ((a * ms_c) ** 2 / df_c + (b * ms_e) ** 2 / df_e)
        f_star_low = stats.f.ppf(q, df_r, v)
        f_star_up = stats.f.ppf(q, v, df_r)
        mixed = k * ms_c + (k * n - k - n) * ms_e
        icc2_low = n * (ms_r - f_star_low * ms_e) / (f_star_low * mixed + n * ms_r)
        icc2_up = n * (f_star_up * ms_r - ms_e) / (mixed + n * f_star_up * ms_r)
    icc2_ci = np.stack([icc2_low, icc2_up], axis=-1)

    var_readers = np.maximum((ms_c - ms_e) / n, 0.0)
    return IntraclassCorrelation(
        n_targets=n,
        n_readers=k,
        icc_2_1=icc2,
        icc_2_1_ci95=icc2_ci,
        icc_3_1=icc3,
        icc_3_1_ci95=icc3_ci,
        f_value=f_value,
        df_rows=df_r,
        df_error=df_e,
        p_value=np.asarray(p_value, dtype=np.float64),
        ms_rows=ms_r,
        ms_readers=ms_c,
        ms_error=ms_e,
        sem=np.sqrt(var_readers + ms_e),
        sem_consistency=np.sqrt(ms_e),
    )


@dataclass(frozen=True)
class BlandAltman:
    """Bias and 95 % limits of agreement of ``second - first``.

    Attributes
    ----------
    n : int
        Number of paired readings.
    bias : ndarray of shape (...), unit of the readings
        Mean difference ``second - first``.
    sd : ndarray of shape (...), unit of the readings
        SD of the differences (``ddof=1``).
    loa : ndarray of shape (..., 2), unit of the readings
        ``bias ∓ 1.96 sd``: lower, upper limit of agreement.
    bias_ci95 : ndarray of shape (..., 2)
        95 % interval of the bias, ``bias ± t_{n-1} sd / sqrt(n)``.
    loa_lower_ci95, loa_upper_ci95 : ndarray of shape (..., 2)
        95 % interval of each limit, ``limit ± t_{n-1} sd sqrt(3 / n)``
        (Bland & Altman 1986, approximate standard error).
    """

    n: int
    bias: np.ndarray
    sd: np.ndarray
    loa: np.ndarray
    bias_ci95: np.ndarray
    loa_lower_ci95: np.ndarray
    loa_upper_ci95: np.ndarray


def bland_altman(first: np.ndarray, second: np.ndarray) -> BlandAltman:
    """Bland–Altman bias and 95 % limits of agreement of paired readings.

    Parameters
    ----------
    first, second : array_like of shape (..., n)
        Two readings of the same ``n`` targets (reader A and reader B, or a
        first and a repeat reading), same unit, broadcastable; the
        differences are ``second - first``.

    Returns
    -------
    BlandAltman
        Arrays of the batch shape ``...``.

    Raises
    ------
    ValueError
        Fewer than 2 pairs, or a value that is not finite.

    Notes
    -----
    ``d = second - first``, ``bias = mean(d)``, ``sd = SD(d)`` (``n - 1``),
    limits ``bias ± 1.96 sd``.  Standard errors (Bland & Altman 1986):
    ``sd / sqrt(n)`` for the bias and about ``sd sqrt(3 / n)`` for each
    limit; intervals use Student's t with ``n - 1`` degrees of freedom.

    Examples
    --------
    >>> ba = bland_altman([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 4.5])
    >>> float(ba.bias), [round(float(v), 3) for v in ba.loa]
    (0.375, [-0.115, 0.865])
    """
    a, b = np.broadcast_arrays(np.asarray(first, np.float64), np.asarray(second, np.float64))
    if a.ndim < 1 or a.shape[-1] < 2:
        raise ValueError(f"first, second: at least 2 paired readings are needed, got shape {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("first, second: contain NaN or infinite values (drop incomplete pairs first)")
    n = a.shape[-1]
    d = b - a
    bias = d.mean(axis=-1)
    sd = d.std(axis=-1, ddof=1)
    half = 1.96 * sd
    t = stats.t.ppf(0.975, n - 1)
    se_bias = sd / np.sqrt(n)
    se_loa = sd * np.sqrt(3.0 / n)
    lower, upper = bias - half, bias + half
    return BlandAltman(
        n=n,
        bias=bias,
        sd=sd,
        loa=np.stack([lower, upper], axis=-1),
        bias_ci95=np.stack([bias - t * se_bias, bias + t * se_bias], axis=-1),
        loa_lower_ci95=np.stack([lower - t * se_loa, lower + t * se_loa], axis=-1),
        loa_upper_ci95=np.stack([upper - t * se_loa, upper + t * se_loa], axis=-1),
    )


def _category_index(ratings: object, name: str) -> tuple[np.ndarray, int]:
    """Category codes of shape (..., n, k) as indices 0..C-1, and C."""
    codes = np.asarray(ratings)
    if codes.dtype == bool:
        codes = codes.astype(np.int64)
    if codes.ndim < 2:
        raise ValueError(f"{name}: expected shape (..., n_targets, n_readers), got {codes.shape}")
    if codes.shape[-2] < 1 or codes.shape[-1] < 2:
        raise ValueError(f"{name}: at least 1 target and 2 readers are needed, got {codes.shape[-2:]}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"{name}: expected integer or boolean category codes, got {codes.dtype}")
    categories = np.unique(codes)
    return np.searchsorted(categories, codes), categories.size


def cohen_kappa(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cohen's kappa of two readers' categorical verdicts.

    Parameters
    ----------
    first, second : array_like of int or bool, shape (..., n)
        The two readers' category codes for the same ``n`` targets
        (for example ``unstable`` as bool).

    Returns
    -------
    ndarray of float, shape (...)
        ``(p_o - p_e) / (1 - p_e)``; NaN where ``p_e = 1`` (both readers gave
        every target the same single category: kappa is undefined).

    Notes
    -----
    ``p_o`` is the fraction of targets with the same verdict, ``p_e =
    Σ_c p_first(c) p_second(c)`` the agreement expected by chance from each
    reader's own category frequencies (Cohen 1960).

    Examples
    --------
    >>> round(float(cohen_kappa([1, 1, 0, 0, 1], [1, 0, 0, 0, 1])), 4)
    0.6154
    """
    a, b = np.broadcast_arrays(np.asarray(first), np.asarray(second))
    index, n_categories = _category_index(np.stack([a, b], axis=-1), "first, second")
    agree = (index[..., 0] == index[..., 1]).mean(axis=-1)
    freq = (index[..., None] == np.arange(n_categories)).mean(axis=-3)  # (..., 2, C)
    expected = (freq[..., 0, :] * freq[..., 1, :]).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (agree - expected) / (1.0 - expected)
    return np.where(np.isclose(expected, 1.0), np.nan, kappa)


def fleiss_kappa(ratings: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of ``k`` readers' categorical verdicts on ``n`` targets.

    Parameters
    ----------
    ratings : array_like of int or bool, shape (..., n, k)
        ``ratings[..., i, j]``: reader ``j``'s category code for target ``i``.

    Returns
    -------
    ndarray of float, shape (...)
        ``(P̄ - P̄_e) / (1 - P̄_e)``; NaN where ``P̄_e = 1`` (a single category
        throughout).

    Notes
    -----
    With ``n_ic`` readers putting target ``i`` in category ``c``:
    ``P_i = (Σ_c n_ic² - k) / (k (k - 1))``, ``P̄ = mean_i P_i``,
    ``p_c = Σ_i n_ic / (n k)``, ``P̄_e = Σ_c p_c²`` (Fleiss 1971).  For two
    readers it equals Scott's pi, not Cohen's kappa (chance agreement from the
    pooled, not each reader's, frequencies).

    Examples
    --------
    >>> round(float(fleiss_kappa([[1, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 1]])), 4)
    0.3333
    """
    index, n_categories = _category_index(ratings, "ratings")
    counts = (index[..., None] == np.arange(n_categories)).sum(axis=-2, dtype=np.float64)  # (..., n, C)
    k = index.shape[-1]
    p_i = ((counts**2).sum(axis=-1) - k) / (k * (k - 1))
    p_bar = p_i.mean(axis=-1)
    p_c = counts.sum(axis=-2) / counts.sum(axis=(-2, -1))[..., None]
    p_e = (p_c**2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (p_bar - p_e) / (1.0 - p_e)
    return np.where(np.isclose(p_e, 1.0), np.nan, kappa)
