"""Synthetic lateral lumbar flexion-extension films with known truth.

The phantom renders T11 to the sacrum and pelvis by projecting attenuation
(vertebral bodies with cortical rims, dished endplates and trabecular texture,
posterior elements, ribs, iliac wings, soft tissue, lung bases and bowel gas)
and processing the detector signal like a DX "for presentation" image.  The
segmental angle and translation of every segment are set by construction
(``docs/measurement.md`` §2), so the true motion is known analytically,
independently of the measurement code.  See ``docs/phantom.md``.
"""

from app.phantom._realism import Realism
from app.phantom._study import (
    CALIBRATIONS,
    COMPRESSIONS,
    CORNER_DEFINITION,
    MEASURED_LEVELS,
    VIEWS,
    PhantomFilm,
    PhantomOptions,
    PhantomStudy,
    make_study,
    write_study,
)

__all__ = [
    "CALIBRATIONS",
    "COMPRESSIONS",
    "CORNER_DEFINITION",
    "MEASURED_LEVELS",
    "VIEWS",
    "PhantomFilm",
    "PhantomOptions",
    "PhantomStudy",
    "Realism",
    "make_study",
    "write_study",
]
