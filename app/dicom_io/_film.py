"""The value objects a loaded film is made of, and its display transform.

A :class:`Film` holds the pixel values after the Modality LUT (what the film
measures) and knows how to turn them into an 8-bit picture for a screen
(the VOI LUT or window, then the MONOCHROME1 inversion), following DICOM
PS3.3 C.11.2 (VOI LUT Module) and C.7.6.3.1.2 (Photometric Interpretation).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from app.dicom_io._digest import FileDigest
from measure import Calibration

__all__ = [
    "Film",
    "FilmHeader",
    "FilmIdentity",
    "View",
    "VoiLut",
    "apply_window",
]


class View(enum.StrEnum):
    """Which functional view a lateral film shows."""

    FLEXION = "flexion"
    """The patient bends forward: the lumbar lordosis flattens."""

    EXTENSION = "extension"
    """The patient bends backward: the lordosis increases."""

    NEUTRAL = "neutral"
    """Standing upright, no functional bending."""

    UNKNOWN = "unknown"
    """Nothing in the file says which view it is, or the evidence conflicts."""


@dataclass(frozen=True, slots=True)
class FilmIdentity:
    """Who and what a film belongs to (patient, study, series, instance).

    Every field is None when the attribute is absent or empty.  The patient's
    name and birth date are kept for the comparison of two films but never
    printed: ``repr()`` leaves them out.

    Parameters
    ----------
    patient_id, patient_name : str or None
        PatientID (0010,0020), PatientName (0010,0010).
    patient_birth_date : datetime.date or None
        PatientBirthDate (0010,0030).
    accession_number, study_instance_uid, series_instance_uid, sop_instance_uid : str or None
        (0008,0050), (0020,000D), (0020,000E), (0008,0018).
    study_date : datetime.date or None
        StudyDate (0008,0020).
    acquisition_datetime : datetime.datetime or None
        AcquisitionDateTime (0008,002A), else AcquisitionDate + AcquisitionTime,
        else ContentDate + ContentTime.  Timezone-aware when the file gives an
        offset.
    modality, series_description, manufacturer : str or None
        (0008,0060), (0008,103E), (0008,0070).
    instance_number : int or None
        InstanceNumber (0020,0013).
    series_number : int or None
        SeriesNumber (0020,0011).
    """

    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: date | None = None
    accession_number: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    study_date: date | None = None
    acquisition_datetime: datetime | None = None
    modality: str | None = None
    series_description: str | None = None
    manufacturer: str | None = None
    instance_number: int | None = None
    series_number: int | None = None

    def __repr__(self) -> str:
        shown = (
            "patient_id",
            "accession_number",
            "study_instance_uid",
            "series_instance_uid",
            "sop_instance_uid",
            "study_date",
            "acquisition_datetime",
            "modality",
            "series_description",
            "manufacturer",
            "instance_number",
            "series_number",
        )
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"FilmIdentity({inner}, patient_name=<hidden>, patient_birth_date=<hidden>)"

    __str__ = __repr__

    def patient_differences(self, other: FilmIdentity) -> tuple[str, ...]:
        """Names of the patient attributes that differ between two films.

        Only attributes present in both films are compared (patient ID, name
        ignoring case and spacing, birth date).  The values themselves are not
        returned, so the result can be shown or logged.

        Parameters
        ----------
        other : FilmIdentity
            The identity of the other film.

        Returns
        -------
        tuple of str
            E.g. ``("patient_id",)``; empty when nothing contradicts.
        """

        def norm_name(name: str | None) -> str | None:
            if not name:
                return None
            return " ".join(name.replace("^", " ").casefold().split())

        pairs = {
            "patient_id": (self.patient_id, other.patient_id),
            "patient_name": (norm_name(self.patient_name), norm_name(other.patient_name)),
            "patient_birth_date": (self.patient_birth_date, other.patient_birth_date),
        }
        return tuple(
            name for name, (a, b) in pairs.items() if a is not None and b is not None and a != b
        )


@dataclass(frozen=True, slots=True, eq=False)
class VoiLut:
    """A VOI LUT Sequence item (PS3.3 C.11.2.1.1): stored value -> presentation value.

    Parameters
    ----------
    first_mapped : int
        The input value mapped to ``data[0]`` (second value of LUTDescriptor).
        Inputs below it map to ``data[0]``, inputs above the last entry map to
        ``data[-1]``.
    bits : int
        Bits per LUT entry (third value of LUTDescriptor).
    data : ndarray of shape (n,)
        The LUT entries (LUTData).
    explanation : str
        LUTExplanation, may be empty.
    """

    first_mapped: int
    bits: int
    data: np.ndarray
    explanation: str = ""

    @property
    def output_max(self) -> int:
        """Largest possible output value: ``2**bits - 1``, or more if the data exceed it.

        Some writers put a wrong bit depth in the descriptor; the data are then
        trusted (their maximum rounded up to the next power of two minus one).
        """
        nominal = (1 << int(self.bits)) - 1 if self.bits > 0 else 0
        data_max = int(self.data.max()) if self.data.size else 0
        if data_max <= nominal and nominal > 0:
            return nominal
        return (1 << max(1, math.ceil(math.log2(data_max + 1)))) - 1

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Map values to display grey levels in [0, 1] (float64)."""
        shifted = np.floor(np.asarray(values, dtype=np.float64)) - self.first_mapped
        index = np.clip(shifted, 0, self.data.size - 1).astype(np.intp)
        return self.data[index].astype(np.float64) / max(self.output_max, 1)


def apply_window(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """The VOI window of PS3.3 C.11.2.1.2 as grey levels in [0, 1].

    Parameters
    ----------
    values : ndarray
        Pixel values after the Modality LUT.
    center, width : float
        Window Center (0028,1050) and Window Width (0028,1051), in the units of
        ``values``.  ``width`` must be >= 1 for LINEAR and > 0 otherwise.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function (0028,1056).

    Returns
    -------
    ndarray of float64, same shape as ``values``
        0 is the darkest display level, 1 the brightest.

    Notes
    -----
    LINEAR: ``y = ((x - (c - 0.5)) / (w - 1) + 0.5)``, clipped to [0, 1], with
    ``x <= c - 0.5 - (w - 1) / 2`` giving 0.  LINEAR_EXACT:
    ``y = (x - c) / w + 0.5`` clipped.  SIGMOID: ``y = 1 / (1 + exp(-4 (x - c) / w))``.
    """
    x = np.asarray(values, dtype=np.float64)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width <= 1:  # a threshold at c - 0.5
        return (x > center - 0.5).astype(np.float64)
    # The saturations at x <= c - 0.5 - (w - 1)/2 and x > c - 0.5 + (w - 1)/2 are
    # exactly where the line leaves [0, 1], so clipping the line is the formula.
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _linear_window_uint8(
    pixels: np.ndarray, center: float, width: float, function: str, invert: bool
) -> np.ndarray:
    """LINEAR / LINEAR_EXACT windowing of a float image in row blocks, in place.

    The same operations as :func:`apply_window`, in the same order (so the same
    grey levels), on blocks of about 1 M pixels: no full-size float64 temporaries.
    """
    if function == "LINEAR_EXACT":
        shift, scale = center, width
    else:
        shift, scale = center - 0.5, width - 1
    out = np.empty(pixels.shape, dtype=np.uint8)
    rows_per_block = max(1, (1 << 20) // max(1, pixels.shape[1]))
    for start in range(0, pixels.shape[0], rows_per_block):
        block = pixels[start : start + rows_per_block].astype(np.float64)
        block -= shift
        block /= scale
        block += 0.5
        np.clip(block, 0.0, 1.0, out=block)
        block *= 255.0
        np.rint(block, out=block)
        if invert:
            np.subtract(255.0, block, out=block)
        out[start : start + rows_per_block] = block
    return out


def _to_uint8(
    pixels: np.ndarray,
    transfer,
    invert: bool,
) -> np.ndarray:
    """Apply a grey-level transfer function ``values -> [0, 1]`` and quantise to uint8.

    Integer pixels of at most 16 bits go through a lookup table over their
    whole value range (one pass over the image, no float copy of it).
    """
    if pixels.dtype.kind in "ui" and pixels.dtype.itemsize <= 2:
        unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
        codes = np.arange(1 << (8 * pixels.dtype.itemsize), dtype=unsigned)
        domain = codes.view(pixels.dtype)  # the value each table index stands for
        table = np.rint(transfer(domain) * 255.0).astype(np.uint8)
        if invert:
            np.subtract(255, table, out=table)
        return table[pixels.view(unsigned)]
    grey = np.rint(transfer(pixels) * 255.0).astype(np.uint8)
    if invert:
        np.subtract(255, grey, out=grey)
    return grey


@dataclass(frozen=True, slots=True, eq=False)
class FilmHeader:
    """What a film's header says, read without decoding its pixel data.

    Parameters
    ----------
    path : str
        The file as given.
    source_format : {"dicom", "png", "jpeg", "tiff"}
        What the file is.
    rows, columns : int
        Image size in pixels.
    bits_stored : int
        Bits Stored (0028,0101); the dtype size for PNG/JPEG/TIFF.
    photometric_interpretation : str
        ``MONOCHROME1`` (low values white) or ``MONOCHROME2``.
    calibration : measure.Calibration
        Pixel spacing and its source, decided per measurement.md §5.
    calibration_warning : str or None
        What the reader must know about the spacing (ignored attributes,
        detector-plane spacing, no spacing at all).
    identity : FilmIdentity
        Patient, study, series and instance.
    view : View
        Flexion, extension, neutral or unknown.
    view_evidence : str
        Which attribute or text decided the view (or why it is unknown).
    transfer_syntax : str or None
        Transfer Syntax UID; None for PNG/JPEG/TIFF.
    transfer_syntax_name : str or None
        Its name, e.g. ``"JPEG 2000 Image Compression (Lossless Only)"``.
    presentation_intent : str or None
        Presentation Intent Type (0008,0068) of DX images (``FOR PRESENTATION``
        or ``FOR PROCESSING``).
    sha256 : str or None
        SHA-256 of the file's bytes, when asked for.
    """

    path: str
    source_format: str
    rows: int
    columns: int
    bits_stored: int
    photometric_interpretation: str
    calibration: Calibration
    calibration_warning: str | None
    identity: FilmIdentity
    view: View
    view_evidence: str
    transfer_syntax: str | None = None
    transfer_syntax_name: str | None = None
    presentation_intent: str | None = None
    sha256: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (self.rows, self.columns)

    @property
    def invert(self) -> bool:
        """True for MONOCHROME1: the display must be inverted so bone shows white."""
        return self.photometric_interpretation == "MONOCHROME1"


@dataclass(frozen=True, slots=True, eq=False)
class Film:
    """A lateral film: pixel values, display transform, calibration, identity, view.

    Built by :func:`app.dicom_io.load_film`.

    Parameters
    ----------
    path : str
        The file as given.
    pixels : ndarray of shape (rows, columns)
        Pixel values after the Modality LUT (Rescale Slope/Intercept or Modality
        LUT Sequence).  Integer dtype as stored when the rescale is the identity,
        float32 otherwise.  Read-only.
    rows, columns : int
        ``pixels.shape``.
    bits_stored : int
        Bits Stored (0028,0101).
    photometric_interpretation : str
        ``MONOCHROME1`` or ``MONOCHROME2``.
    window : tuple of (float, float)
        ``(center, width)`` in the units of ``pixels``: the first Window
        Center/Width of the file, else the input range of its VOI LUT, else the
        0.5th-99.5th percentile range of the pixels.
    window_source : str
        Where ``window`` came from.
    voi_lut_function : str
        VOI LUT Function (0028,1056): ``LINEAR`` (default), ``LINEAR_EXACT``,
        ``SIGMOID``.
    voi_lut : VoiLut or None
        The first VOI LUT Sequence item when present; the default display uses it.
    invert : bool
        True for MONOCHROME1 (bone shows white once inverted).
    calibration : measure.Calibration
        Pixel spacing and its source (measurement.md §5); ``detail`` names the
        attributes used.
    calibration_warning : str or None
        Caution about the spacing, or None.
    identity : FilmIdentity
        Patient, study, series, instance and acquisition time.
    view : View
        Recognised view.
    view_evidence : str
        Which attribute/text matched.
    digest : FileDigest
        SHA-256 of the file's bytes, computed on first use of :attr:`sha256`
        (batch never needs it); an error if the file changed since it loaded.
    source_format : {"dicom", "png", "jpeg", "tiff"}
        What the file was.
    transfer_syntax, transfer_syntax_name : str or None
        Transfer syntax of a DICOM file.
    presentation_intent : str or None
        Presentation Intent Type (0008,0068), when present.
    """

    path: str
    pixels: np.ndarray
    rows: int
    columns: int
    bits_stored: int
    photometric_interpretation: str
    window: tuple[float, float]
    window_source: str
    voi_lut_function: str
    voi_lut: VoiLut | None
    invert: bool
    calibration: Calibration
    calibration_warning: str | None
    identity: FilmIdentity
    view: View
    view_evidence: str
    digest: FileDigest
    source_format: str
    transfer_syntax: str | None = None
    transfer_syntax_name: str | None = None
    presentation_intent: str | None = None

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes (hex), hashed on first use.

        Raises
        ------
        app.errors.InputFileError
            The file changed or vanished since the film was loaded.
        """
        return self.digest.value

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (self.rows, self.columns)

    def display_image(
        self,
        window: tuple[float, float] | None = None,
        invert: bool | None = None,
    ) -> np.ndarray:
        """The film as an 8-bit picture for a screen, bone white.

        Parameters
        ----------
        window : tuple of (float, float), optional
            ``(center, width)`` in pixel units.  Default: the film's VOI LUT
            Sequence when it has one, else :attr:`window`; a given window is
            applied with the film's VOI LUT Function.
        invert : bool, optional
            Invert grey levels; default :attr:`invert` (True for MONOCHROME1).

        Returns
        -------
        ndarray of uint8, shape (rows, columns)
            0 black, 255 white.
        """
        invert = self.invert if invert is None else bool(invert)
        if window is None and self.voi_lut is not None:
            transfer = self.voi_lut
        else:
            center, width = self.window if window is None else window
            center, width = float(center), float(width)
            if not (math.isfinite(center) and math.isfinite(width) and width > 0):
                raise ValueError(f"window: need a finite center and a positive width, got {window}")
            function = self.voi_lut_function
            fast = self.pixels.dtype.kind == "f" or self.pixels.dtype.itemsize > 2
            if (
                fast
                and function in ("LINEAR", "LINEAR_EXACT")
                and (width > 1 or function == "LINEAR_EXACT")
            ):
                return _linear_window_uint8(self.pixels, center, width, function, invert)

            def transfer(values: np.ndarray) -> np.ndarray:
                return apply_window(values, center, width, function)

        return _to_uint8(self.pixels, transfer, invert)

    def header(self) -> FilmHeader:
        """The metadata of this film as a :class:`FilmHeader`."""
        return FilmHeader(
            path=self.path,
            source_format=self.source_format,
            rows=self.rows,
            columns=self.columns,
            bits_stored=self.bits_stored,
            photometric_interpretation=self.photometric_interpretation,
            calibration=self.calibration,
            calibration_warning=self.calibration_warning,
            identity=self.identity,
            view=self.view,
            view_evidence=self.view_evidence,
            transfer_syntax=self.transfer_syntax,
            transfer_syntax_name=self.transfer_syntax_name,
            presentation_intent=self.presentation_intent,
            sha256=self.sha256,
        )
