"""A simulated reader-agreement study: N studies read by several readers (landmarks files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.measure._spines import random_spines

LEVELS = ("L1", "L2", "L3", "L4", "L5", "S1")
CORNER_NAMES = ("AS", "PS", "PI", "AI")
SPACING = (0.15, 0.15)


def _film(corners: np.ndarray, study: int, role: str, with_uid: bool) -> dict:
    marks = {
        level: {
            c: [float(x), float(y)]
            for c, (x, y) in zip(CORNER_NAMES, corners[v], strict=True)
            if np.isfinite(x)
        }
        for v, level in enumerate(LEVELS)
    }
    image = {"sha256": f"{study:04d}{role[:3]}" * 8}
    if with_uid:
        image |= {
            "study_instance_uid": f"1.2.3.{study}",
            "sop_instance_uid": f"1.2.3.{study}.{role[:1]}",
        }
    return {
        "pixel_spacing_mm": list(SPACING),
        "calibration_source": "calibrated",
        "landmarks": marks,
        "image": image,
    }


def reader_study(
    root: Path,
    readers: dict[str, float],
    n_studies: int = 12,
    seed: int = 0,
    with_uid: bool = True,
    bias_px: dict[str, float] | None = None,
) -> tuple[dict[str, Path], np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Write ``root/<reader>/study<i>.json`` for each reader.

    ``readers`` maps a name to that reader's corner noise SD in pixels;
    ``bias_px`` adds a constant shift along x to that reader's flexion PI corners
    (a systematic translation bias).  Returns the folders, the true corners
    (flexion, extension stacked) and each reader's corners.
    """
    rng = np.random.default_rng(seed)
    flex, ext = random_spines(rng, n_studies, spacing=SPACING)
    folders, corners = {}, {}
    for name, sd in readers.items():
        f = flex + rng.normal(0, sd, flex.shape)
        e = ext + rng.normal(0, sd, ext.shape)
        if bias_px and name in bias_px:
            f[:, :, 2, 0] += bias_px[name]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_studies):
            doc = {
                "format": "lumbar-instability-landmarks",
                "levels": list(LEVELS),
                "flexion": _film(f[i], i, "flexion", with_uid),
                "extension": _film(e[i], i, "extension", with_uid),
            }
            (folder / f"study{i:02d}.json").write_text(json.dumps(doc), encoding="utf-8")
        folders[name] = folder
        corners[name] = (f, e)
    return folders, np.stack([flex, ext]), corners
