"""Phantom-study set-up shared by the accuracy and coverage benchmarks.

Both benchmarks cycle one study per seed through the same acquisition
conditions and prepare the films as a reader's software would see them, so
that their figures describe the same population of studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.phantom import make_study

NOISE = (0.0, 0.02, 0.05)
"""Added Gaussian noise per pixel, as a fraction of the film's 1st-99th percentile range."""


def conditions(k: int) -> dict:
    """Study options and added noise for study ``k`` (cycling through every factor).

    Facing left/right, film rotation 0/15°, a magnification change between the
    films of 1.00/1.10 and added noise 0/2/5 %.
    """
    return {
        "facing": ("left", "right")[k % 2],
        "rotation_deg": (0.0, 15.0)[(k // 2) % 2],
        "magnification_change": (1.0, 1.1)[(k // 4) % 2],
        "noise": NOISE[k % 3],
    }


def noisy(pixels: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """``pixels`` as float32 plus Gaussian noise of ``level`` × the 1st-99th percentile range."""
    img = pixels.astype(np.float32)
    if level > 0:
        lo, hi = np.percentile(img, [1, 99])
        img = img + rng.normal(0.0, level * (hi - lo), img.shape).astype(np.float32)
    return img


@dataclass(frozen=True)
class PreparedStudy:
    """One phantom study ready for the landmark methods.

    Attributes
    ----------
    seed : int
    study : app.phantom.PhantomStudy or None
        None when the films came from ``film_cache``.
    images : tuple of ndarray of shape (H, W)
        Flexion, extension films (float32, noise added, bone bright).
    truth : tuple of ndarray of shape (V, 4, 2)
        True corners (pixels) of flexion and extension.
    spacing_mm : tuple of float
        Isotropic pixel spacing of flexion and extension, mm (in the patient).
    rng : numpy.random.Generator
        Seeded by ``seed``, already used for the noise; the benchmark draws its
        simulated clicks from it.
    label : str
        The conditions, for progress lines.
    """

    seed: int
    study: object | None
    images: tuple[np.ndarray, np.ndarray]
    truth: tuple[np.ndarray, np.ndarray]
    spacing_mm: tuple[float, float]
    rng: np.random.Generator
    label: str


def prepare(seed: int, k: int, scale: float, realistic: bool = False,
            film_cache: Path | None = None) -> PreparedStudy:
    """Render study ``seed`` under ``conditions(k)`` and prepare its films.

    Parameters
    ----------
    seed : int
        Phantom seed (also seeds the noise and the benchmark's random draws).
    k : int
        Index into the cycle of :func:`conditions`.
    scale : float
        Phantom film size factor.
    realistic : bool
        The phantom's ``--realistic`` preset (anatomy, motion and film artefacts
        drawn from the seed); it decides its own film look, so only the facing
        and the added noise are taken from the cycle.
    film_cache : Path, optional
        Folder keeping the rendered films (pixels, truth, spacing) between runs:
        rendering is most of the time of a study.
    """
    cond = conditions(k)
    noise = cond.pop("noise")
    path = None
    if film_cache is not None:
        path = film_cache / f"{'realistic' if realistic else 'standard'}-{seed}-{k}-{scale:g}.npz"
    if path is not None and path.exists():
        with np.load(path) as z:
            pixels = (z["flexion"], z["extension"])
            truth = (z["truth_flexion"], z["truth_extension"])
            spacing = (float(z["spacing"][0]), float(z["spacing"][1]))
            inverted = bool(z["inverted"])
        study = None
    else:
        if realistic:
            study = make_study(seed, scale=scale, realistic=True, facing=cond["facing"])
        else:
            study = make_study(seed, scale=scale, **cond)
        flex, ext = study.flexion, study.extension
        pixels = (flex.pixels, ext.pixels)
        truth = (flex.landmark_array(), ext.landmark_array())
        spacing = (float(flex.pixel_spacing_mm[0]), float(ext.pixel_spacing_mm[0]))
        inverted = flex.photometric == "MONOCHROME1"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, flexion=pixels[0], extension=pixels[1], truth_flexion=truth[0],
                     truth_extension=truth[1], spacing=np.array(spacing), inverted=inverted)
    rng = np.random.default_rng(seed)
    images = (noisy(pixels[0], noise, rng), noisy(pixels[1], noise, rng))
    if inverted:
        images = (-images[0], -images[1])
    label = ("realistic " if realistic else "") + " ".join(
        f"{key}={value}" for key, value in {**cond, "noise": noise}.items()
    )
    return PreparedStudy(seed, study, images, truth, spacing, rng, label)
