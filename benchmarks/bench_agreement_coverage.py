"""Measured coverage of the 95 % intervals of ICC(2,1), ICC(3,1) and the Bland–Altman bias.

Simulates reader studies with known variance components (targets SD 2, error
SD 1, readers' systematic SD as given) and counts how often each interval
contains the true value.  Prints a Markdown table (docs/agreement.md)::

    .venv/bin/python benchmarks/bench_agreement_coverage.py --reps 4000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import bland_altman, intraclass_correlation

CASES = [(10, 2, 0.5), (20, 2, 0.0), (20, 2, 0.5), (60, 2, 1.0), (20, 3, 1.0), (30, 4, 1.0), (30, 6, 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| studies | readers | readers' SD | ICC(2,1) | ICC(3,1) | bias (first pair) |")
    print("|---|---|---|---|---|---|")
    for n, k, sd_reader in CASES:
        reader = rng.normal(0, sd_reader, (args.reps, 1, k))
        tables = rng.normal(0, 2, (args.reps, n, 1)) + reader + rng.normal(0, 1, (args.reps, n, k))
        icc = intraclass_correlation(tables)
        true_2 = 4 / (4 + sd_reader**2 + 1)
        true_3 = 4 / 5
        cover_2 = np.mean((icc.icc_2_1_ci95[:, 0] <= true_2) & (true_2 <= icc.icc_2_1_ci95[:, 1]))
        cover_3 = np.mean((icc.icc_3_1_ci95[:, 0] <= true_3) & (true_3 <= icc.icc_3_1_ci95[:, 1]))
        ba = bland_altman(tables[:, :, 0], tables[:, :, 1])
        true_bias = reader[:, 0, 1] - reader[:, 0, 0]  # this study's readers' systematic difference
        cover_b = np.mean((ba.bias_ci95[:, 0] <= true_bias) & (true_bias <= ba.bias_ci95[:, 1]))
        print(f"| {n} | {k} | {sd_reader} | {cover_2:.3f} | {cover_3:.3f} | {cover_b:.3f} |")


if __name__ == "__main__":
    main()
