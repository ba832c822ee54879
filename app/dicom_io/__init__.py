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

Every unusable file raises :class:`app.errors.InputFileError` with a one-line
reason.  See ``docs/dicom-input.md``.
"""

from app.dicom_io._calibration import calibration_and_warning, calibration_from_dataset
from app.dicom_io._film import Film, FilmHeader, FilmIdentity, View, VoiLut, apply_window
from app.dicom_io._reader import file_sha256, load_film, read_film_header
from app.dicom_io._view import recognise_view

__all__ = [
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
    "read_film_header",
    "recognise_view",
]
