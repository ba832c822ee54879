"""Reader-agreement statistics against a textbook case, pingouin, scikit-learn and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from measure._agreement import (
    SDC_FACTOR,
    bland_altman,
    cohen_kappa,
    fleiss_kappa,
    intraclass_correlation,
)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def test_shrout_fleiss_table_mean_squares_and_iccs():
    icc = intraclass_correlation(SHROUT_FLEISS)
    # The paper's Table 2 ANOVA: BMS 11.24, JMS 32.49, EMS 1.02.
    assert icc.ms_rows == pytest.approx(11.24, abs=0.005)
    assert icc.ms_readers == pytest.approx(32.49, abs=0.005)
    assert icc.ms_error == pytest.approx(1.02, abs=0.005)
    # Hand computation from the published mean squares (n = 6, k = 4):
    # ICC(3,1) = (11.24 - 1.02) / (11.24 + 3 * 1.02) = 10.22 / 14.30 = 0.7147
    # ICC(2,1) = 10.22 / (14.30 + 4 * (32.49 - 1.02) / 6) = 10.22 / 35.28 = 0.2897
    assert icc.icc_3_1 == pytest.approx(0.7147, abs=0.001)
    assert icc.icc_2_1 == pytest.approx(0.2897, abs=0.001)
    # The paper's figures: ICC(2,1) = 0.29, ICC(3,1) = 0.71.
    assert round(float(icc.icc_2_1), 2) == 0.29
    assert round(float(icc.icc_3_1), 2) == 0.71
    # F = BMS / EMS = 11.03 on (5, 15) degrees of freedom.
    assert (icc.df_rows, icc.df_error) == (5, 15)
    assert icc.f_value == pytest.approx(11.027, abs=0.001)
    # 95 % intervals of this example as printed by R psych::ICC and pingouin's docs:
    # ICC(2,1) [0.02, 0.76], ICC(3,1) [0.34, 0.95].
    np.testing.assert_allclose(icc.icc_2_1_ci95, [0.02, 0.76], atol=0.005)
    np.testing.assert_allclose(icc.icc_3_1_ci95, [0.34, 0.95], atol=0.005)
    # SEM from the variance components: sqrt((32.49 - 1.02) / 6 + 1.02) = 2.503
    assert icc.sem == pytest.approx(2.503, abs=0.002)
    assert icc.sdc == pytest.approx(1.96 * np.sqrt(2) * 2.503, abs=0.01)


def _pingouin_icc(table: np.ndarray) -> pd.DataFrame:
    pg = pytest.importorskip("pingouin")
    n, k = table.shape
    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "reader": np.tile(np.arange(k), n),
            "value": table.ravel(),
        }
    )
    saved = dict(pg.options)  # full precision: no global or per-column rounding
    for key in [key for key in pg.options if key.startswith("round")]:
        del pg.options[key]
    pg.options["round"] = None
    try:
        out = pg.intraclass_corr(data=long, targets="target", raters="reader", ratings="value")
    finally:
        pg.options.clear()
        pg.options.update(saved)
    return out.set_index("Type")


@pytest.mark.parametrize(("n", "k", "seed"), [(6, 4, 0), (30, 2, 1), (12, 3, 2), (50, 5, 3), (3, 2, 4)])
def test_icc_matches_pingouin_to_1e6(n, k, seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(10.0, 3.0, size=(n, 1))
    reader_bias = rng.normal(0.0, 1.0, size=(1, k))
    table = truth + reader_bias + rng.normal(0.0, 1.5, size=(n, k))
    ours = intraclass_correlation(table)
    ref = _pingouin_icc(table)
    for ours_name, ref_name in (("icc_2_1", "ICC(A,1)"), ("icc_3_1", "ICC(C,1)")):
        assert float(getattr(ours, ours_name)) == pytest.approx(ref.at[ref_name, "ICC"], abs=1e-6)
        np.testing.assert_allclose(
            getattr(ours, f"{ours_name}_ci95"), ref.at[ref_name, "CI95"], atol=1e-6
        )
        assert float(ours.f_value) == pytest.approx(ref.at[ref_name, "F"], abs=1e-6)
        assert float(ours.p_value) == pytest.approx(ref.at[ref_name, "pval"], abs=1e-9)
        assert ours.df_error == ref.at[ref_name, "df2"]


def test_shrout_fleiss_matches_pingouin_to_1e6():
    ours = intraclass_correlation(SHROUT_FLEISS)
    ref = _pingouin_icc(SHROUT_FLEISS)
    assert float(ours.icc_2_1) == pytest.approx(ref.at["ICC(A,1)", "ICC"], abs=1e-6)
    assert float(ours.icc_3_1) == pytest.approx(ref.at["ICC(C,1)", "ICC"], abs=1e-6)
    np.testing.assert_allclose(ours.icc_2_1_ci95, ref.at["ICC(A,1)", "CI95"], atol=1e-6)
    np.testing.assert_allclose(ours.icc_3_1_ci95, ref.at["ICC(C,1)", "CI95"], atol=1e-6)


def test_icc_batch_equals_one_table_at_a_time():
    rng = np.random.default_rng(7)
    tables = rng.normal(size=(3, 4, 15, 3)) + rng.normal(size=(3, 4, 15, 1)) * 2
    batch = intraclass_correlation(tables)
    assert batch.icc_2_1.shape == (3, 4)
    assert batch.icc_2_1_ci95.shape == (3, 4, 2)
    for i in range(3):
        for j in range(4):
            one = intraclass_correlation(tables[i, j])
            assert batch.icc_2_1[i, j] == pytest.approx(float(one.icc_2_1), abs=1e-12)
            assert batch.icc_3_1[i, j] == pytest.approx(float(one.icc_3_1), abs=1e-12)
            np.testing.assert_allclose(batch.icc_2_1_ci95[i, j], one.icc_2_1_ci95, atol=1e-12)
            assert batch.sem[i, j] == pytest.approx(float(one.sem), abs=1e-12)


def test_sem_of_two_readers_is_the_sd_of_their_differences():
    rng = np.random.default_rng(11)
    a = rng.normal(20, 5, 40)
    b = a + 0.8 + rng.normal(0, 1.2, 40)
    icc = intraclass_correlation(np.stack([a, b], axis=-1))
    sd_diff = np.std(b - a, ddof=1)
    # Two readers: MS_error = var(d) / 2, so SEM(consistency) = SD(d) / sqrt(2) and
    # SDC(consistency) = 1.96 * SD(d), the half-width of the limits of agreement.
    assert float(icc.sem_consistency) == pytest.approx(sd_diff / np.sqrt(2), rel=1e-12)
    ba = bland_altman(a, b)
    assert float(icc.sdc_consistency) == pytest.approx((ba.loa[1] - ba.loa[0]) / 2, rel=1e-12)
    # Agreement SEM adds the readers' systematic difference: var = (MS_C - MS_E) / n + MS_E,
    # with MS_C = n * mean(d)^2 / 2 for two readers.
    ms_c = 40 * np.mean(b - a) ** 2 / 2
    expected = np.sqrt((ms_c - sd_diff**2 / 2) / 40 + sd_diff**2 / 2)
    assert float(icc.sem) == pytest.approx(expected, rel=1e-12)
    assert SDC_FACTOR == pytest.approx(2.7719, abs=1e-4)


def test_sem_estimates_the_true_measurement_error():
    # 2000 targets, 3 readers with fixed offsets 0, +1, -1 and error SD 0.5: the
    # variance of the reader effects is 1 (k - 1 denominator), so SEM = sqrt(1 + 0.25).
    rng = np.random.default_rng(5)
    truth = rng.normal(0, 4, size=(2000, 1))
    table = truth + np.array([0.0, 1.0, -1.0]) + rng.normal(0, 0.5, size=(2000, 3))
    icc = intraclass_correlation(table)
    assert float(icc.sem) == pytest.approx(np.sqrt(1.25), rel=0.03)
    assert float(icc.sem_consistency) == pytest.approx(0.5, rel=0.03)
    # True ICC(3,1) = 16 / (16 + 0.25); ICC(2,1) = 16 / (16 + 1 + 0.25).
    assert float(icc.icc_3_1) == pytest.approx(16 / 16.25, abs=0.01)
    assert float(icc.icc_2_1) == pytest.approx(16 / 17.25, abs=0.01)


def test_icc_intervals_cover_the_truth_95_percent_of_the_time():
    # 4000 simulated studies of 20 targets x 3 readers with known ICCs; the
    # F-based intervals must contain them in about 95 % of the studies.
    rng = np.random.default_rng(2024)
    reps, n, k = 4000, 20, 3
    sd_target, sd_reader, sd_error = 2.0, 1.0, 1.0
    tables = (
        rng.normal(0, sd_target, (reps, n, 1))
        + rng.normal(0, sd_reader, (reps, 1, k))
        + rng.normal(0, sd_error, (reps, n, k))
    )
    icc = intraclass_correlation(tables)
    true_2 = sd_target**2 / (sd_target**2 + sd_reader**2 + sd_error**2)
    true_3 = sd_target**2 / (sd_target**2 + sd_error**2)
    cover_2 = np.mean((icc.icc_2_1_ci95[:, 0] <= true_2) & (true_2 <= icc.icc_2_1_ci95[:, 1]))
    cover_3 = np.mean((icc.icc_3_1_ci95[:, 0] <= true_3) & (true_3 <= icc.icc_3_1_ci95[:, 1]))
    # ICC(2,1)'s interval is approximate (Satterthwaite): with only 3 readers the
    # readers' variance is poorly known and it covers about 92 % (docs/agreement.md).
    assert 0.90 <= cover_2 <= 0.965
    assert 0.935 <= cover_3 <= 0.965  # exact interval: binomial SE 0.0034


def test_bland_altman_hand_computed():
    first = np.array([10.0, 12.0, 9.0, 15.0, 11.0])
    second = np.array([11.0, 12.5, 10.0, 15.0, 13.0])
    # d = 1, 0.5, 1, 0, 2: mean 0.9, squared deviations .01 .16 .01 .81 1.21 -> var 2.2 / 4 = 0.55
    ba = bland_altman(first, second)
    sd = np.sqrt(0.55)
    assert ba.n == 5
    assert float(ba.bias) == pytest.approx(0.9, abs=1e-12)
    assert float(ba.sd) == pytest.approx(sd, abs=1e-12)
    np.testing.assert_allclose(ba.loa, [0.9 - 1.96 * sd, 0.9 + 1.96 * sd], atol=1e-12)
    t4 = 2.7764451051977987  # Student's t, 97.5 %, 4 df (tables: 2.776)
    np.testing.assert_allclose(ba.bias_ci95, [0.9 - t4 * sd / np.sqrt(5), 0.9 + t4 * sd / np.sqrt(5)])
    lower = 0.9 - 1.96 * sd
    np.testing.assert_allclose(
        ba.loa_lower_ci95, [lower - t4 * sd * np.sqrt(3 / 5), lower + t4 * sd * np.sqrt(3 / 5)]
    )
    # The sign follows second - first.
    assert float(bland_altman(second, first).bias) == pytest.approx(-0.9)


def test_bland_altman_limits_contain_95_percent_of_new_differences():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 5, (2000, 60))
    b = a + 0.5 + rng.normal(0, 1.0, (2000, 60))
    ba = bland_altman(a, b)
    assert ba.bias.shape == (2000,)
    # The true 95 % range of d is 0.5 ± 1.96; the estimated limits average to it.
    assert np.mean(ba.loa[:, 0]) == pytest.approx(0.5 - 1.96, abs=0.02)
    assert np.mean(ba.loa[:, 1]) == pytest.approx(0.5 + 1.96, abs=0.02)
    # and the bias interval covers the true bias about 95 % of the time.
    cover = np.mean((ba.bias_ci95[:, 0] <= 0.5) & (0.5 <= ba.bias_ci95[:, 1]))
    assert 0.935 <= cover <= 0.965


@pytest.mark.parametrize("seed", range(4))
def test_cohen_kappa_matches_scikit_learn(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2 + seed % 2, 40)
    b = np.where(rng.random(40) < 0.7, a, rng.integers(0, 2 + seed % 2, 40))
    expected = sklearn_metrics.cohen_kappa_score(a, b)
    assert float(cohen_kappa(a, b)) == pytest.approx(expected, abs=1e-12)
    assert float(cohen_kappa(a.astype(bool), b.astype(bool))) == pytest.approx(
        sklearn_metrics.cohen_kappa_score(a.astype(bool), b.astype(bool)), abs=1e-12
    )


def test_cohen_kappa_hand_computed_and_undefined():
    # 2x2 table: both unstable 20, A only 5, B only 10, neither 15 (n = 50).
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15, dtype=bool)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15, dtype=bool)
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert float(cohen_kappa(a, b)) == pytest.approx(0.4, abs=1e-12)
    # Every verdict the same by both readers: chance agreement is 1, kappa undefined.
    assert np.isnan(cohen_kappa(np.zeros(10, bool), np.zeros(10, bool)))
    batch = cohen_kappa(np.stack([a, a]), np.stack([b, a]))
    np.testing.assert_allclose(batch, [0.4, 1.0])


# Fleiss (1971) style example as worked in the literature (10 subjects, 14 raters,
# 5 categories): P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_COUNTS = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def _codes_from_counts(counts: np.ndarray) -> np.ndarray:
    return np.stack([np.repeat(np.arange(counts.shape[1]), row) for row in counts])


def test_fleiss_kappa_worked_example_and_statsmodels():
    codes = _codes_from_counts(FLEISS_COUNTS)
    assert codes.shape == (10, 14)
    kappa = float(fleiss_kappa(codes))
    assert kappa == pytest.approx(0.210, abs=0.0005)
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    assert kappa == pytest.approx(inter_rater.fleiss_kappa(FLEISS_COUNTS, method="fleiss"), abs=1e-12)
    # Readers in another order: the same kappa; a batch of two tables: two kappas.
    rng = np.random.default_rng(0)
    shuffled = rng.permuted(codes, axis=1)
    np.testing.assert_allclose(fleiss_kappa(np.stack([codes, shuffled])), [kappa, kappa], atol=1e-12)


def test_fleiss_kappa_of_random_verdicts_matches_statsmodels():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = np.random.default_rng(9)
    codes = np.where(rng.random((25, 4)) < 0.8, rng.integers(0, 2, (25, 1)), rng.integers(0, 2, (25, 4)))
    table, _ = inter_rater.aggregate_raters(codes)
    assert float(fleiss_kappa(codes.astype(bool))) == pytest.approx(
        inter_rater.fleiss_kappa(table, method="fleiss"), abs=1e-12
    )
    assert np.isnan(fleiss_kappa(np.ones((5, 3), bool)))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="ratings: at least 2 targets"):
        intraclass_correlation([[1.0, 2.0]])
    with pytest.raises(ValueError, match="ratings: at least 2 readers"):
        intraclass_correlation([[1.0], [2.0]])
    with pytest.raises(ValueError, match="NaN"):
        intraclass_correlation([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="confidence"):
        intraclass_correlation(SHROUT_FLEISS, confidence=95)
    with pytest.raises(ValueError, match="at least 2 paired"):
        bland_altman([1.0], [2.0])
    with pytest.raises(ValueError, match="integer or boolean"):
        cohen_kappa([0.5, 1.0], [1.0, 1.0])
