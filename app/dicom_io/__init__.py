"""Reading lateral films: DICOM and PNG/JPEG/TIFF, with calibration provenance.

Public API
----------
load_film(path) -> Film
    Pixel values after the Modality LUT, display window (VOI LUT or window
    tags, MONOCHROME1 inverted), calibration per measurement.md §5 with its
    source, identity, view.
read_film_header(path) -> FilmHeader
    The same metadata without decoding the pixel data (for batch scans).
calibration_from_dataset(ds) -> measure.Calibration
recognise_view(ds_or_text) -> (View, evidence)
quiet_pydicom()
    Context manager: no pydicom warning or log record (they quote values).

Memory: a film whose declared size would need more than the budget
(``LUMBAR_INSTABILITY_MEMORY_BUDGET_MB``, default 2048 MB) is refused before
anything is allocated; only regular files are opened.

Every unusable file raises :class:`app.errors.InputFileError` with a one-line
reason.  See ``docs/dicom-input.md``.
"""

from app.dicom_io._calibration import calibration_and_warning, calibration_from_dataset
from app.dicom_io._film import Film, FilmHeader, FilmIdentity, View, VoiLut, apply_window
from app.dicom_io._limits import BUDGET_ENV, DEFAULT_BUDGET_MB, memory_budget_bytes
from app.dicom_io._reader import (
    DECODING_PLUGINS,
    file_sha256,
    load_film,
    quiet_pydicom,
    read_film_header,
)
from app.dicom_io._view import recognise_view

__all__ = [
    "BUDGET_ENV",
    "DECODING_PLUGINS",
    "DEFAULT_BUDGET_MB",
    "Film",
    "FilmHeader",
    "FilmIdentity",
    "View",
    "VoiLut",
    "apply_window",
    "calibration_and_warning",
    "calibration_from_dataset",
    "file_sha256",
    "load_film",
    "memory_budget_bytes",
    "quiet_pydicom",
    "read_film_header",
    "recognise_view",
]
