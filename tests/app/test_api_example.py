"""The README's notebook example (pandas and polars) runs as written on a phantom archive."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.app._cohort_archive import build_cohort

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example -->\s*```python\n(.*?)```\s*<!-- end api-example -->",
                      text, re.S)
    assert block, "README: the api-example block is missing"
    return block.group(1)


def test_readme_example_runs_and_prints_the_cohort(tmp_path: Path):
    cohort = build_cohort(tmp_path / "build", n_patients=2)
    shutil.move(cohort.input_dir, tmp_path / "export")
    shutil.move(cohort.landmarks_dir, tmp_path / "landmarks")
    code = readme_example()
    # a notebook cell: run as `python -c`, in a fresh interpreter, from the data folder
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    studies = pd.read_csv(tmp_path / "results" / "studies.csv")
    assert len(studies) == len(cohort.studies)
    # pandas part: the follow-up table lists every study with its interval in days
    for patient in {s.patient_id for s in cohort.studies}:
        assert out.count(patient) >= 2
    assert "101" in out
    # level summary and polars: L4-L5 unstable in half of the studies (the phantom's truth)
    unstable_l45 = sum("L4-L5" in s.unstable for s in cohort.studies)
    assert unstable_l45 == len(cohort.studies) // 2
    assert re.search(rf"L4-L5\s+{len(cohort.studies)}\s+{unstable_l45}\s+50.0\s", out)
    assert "shape: (5, 3)" in out and "unstable_share" in out
    # one study: its five segments with intervals and findings
    # (which study is first depends on its random UID: its finding is not known here)
    assert "translation_pct_ci95_low" in out and "finding" in out and "stable\n" in out
