"""Reading films: DICOM with pydicom and its decoders, PNG/JPEG/TIFF with OpenCV.

Every problem with a file becomes an :class:`app.errors.InputFileError` with a
one-line reason; nothing else escapes for a file that is merely bad.

Memory: the header is parsed without the pixel data, then the pixel data are
decoded straight from the file (``pydicom.pixels.pixel_array`` on the open
file, ``view_only`` for native encodings), so a 4000 x 5000 x 16-bit film costs
one array of 40 MB, not a copy of the file's bytes plus the array.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.dicom_io._calibration import calibration_and_warning, raw_text
from app.dicom_io._film import Film, FilmHeader, FilmIdentity, VoiLut
from app.dicom_io._view import dataset_view_tiers, view_from_sources
from app.errors import InputFileError
from measure import Calibration

__all__ = ["file_sha256", "load_film", "read_film_header"]

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
)
# A DICOM data set without the 128-byte preamble starts with a group 0002 or
# 0008 element (either byte order).
_RAW_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
_PIXEL_DATA = (0x7FE0, 0x0010)
_FLOAT_PIXEL_DATA = {
    (0x7FE0, 0x0008): "Float Pixel Data",
    (0x7FE0, 0x0009): "Double Float Pixel Data",
}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True, slots=True)
class _PixelElement:
    """Where the pixel data are in the file (value offset, declared length)."""

    offset: int
    length: int | None  # None: undefined length (encapsulated)
    available: int  # bytes of the value actually in the file
    in_memory: bytes | None = None  # deflated files: the inflated value


@dataclass(frozen=True, slots=True)
class _Opened:
    ds: Dataset
    transfer_syntax: UID
    has_meta_syntax: bool
    pixel: _PixelElement | None
    deflated: bool


# ----------------------------------------------------------------------------- sniffing


def _sniff(path: Path) -> str:
    """``"dicom"``, ``"dicom-raw"`` (no preamble), ``"png"``, ``"jpeg"`` or ``"tiff"``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a file") from None
    except PermissionError:
        raise InputFileError(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise InputFileError(path, "empty file")
    if len(head) == 132 and head[128:132] == b"DICM":
        return "dicom"
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 8 and head[:2] in _RAW_DICOM_STARTS:
        return "dicom-raw"
    raise InputFileError(path, "not a DICOM file (no DICM preamble and not an image)")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- DICOM header


def _syntax_label(uid: UID) -> str:
    name = uid.name if uid.name != str(uid) else "unknown"
    return f"transfer syntax {uid} ({name})"


def _open_dicom(path: Path, raw: bool) -> _Opened:
    """Parse the header (everything before the pixel data) and locate the pixel data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with path.open("rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=raw)
            except InvalidDicomError:
                raise InputFileError(
                    path, "not a DICOM file (no DICM preamble and not an image)"
                ) from None
            except Exception as exc:
                raise InputFileError(path, f"unreadable DICOM header: {_one_line(exc)}") from None
            meta_syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
            if meta_syntax:
                syntax = UID(str(meta_syntax).strip())
            else:
                implicit, little = ds.original_encoding
                if implicit is None or little is None:
                    raise InputFileError(path, "no transfer syntax and no readable data set")
                syntax = (
                    ImplicitVRLittleEndian
                    if implicit
                    else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
                )
            _drop_damaged_elements(ds, path)
            if not syntax.is_transfer_syntax:
                raise InputFileError(
                    path, f"{_syntax_label(syntax)} cannot be decoded: not supported"
                )
            if len(ds) == 0:
                raise InputFileError(path, "not a DICOM file (no DICM preamble and not an image)")
            if syntax.is_deflated:
                return _open_deflated(path, raw, syntax, bool(meta_syntax))
            pixel = _locate_pixel_data(fp, path, syntax, size)
    return _Opened(ds, syntax, bool(meta_syntax), pixel, deflated=False)


def _drop_damaged_elements(ds: Dataset, path: Path) -> None:
    """Convert every element now; drop those pydicom cannot parse.

    pydicom converts elements lazily, so a damaged one (an unknown VR, a
    broken sequence) would otherwise raise wherever it is first read.  A
    damaged image pixel attribute (group 0028) makes the film unreadable; any
    other damaged attribute is dropped and the film is read without it.
    """
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
            if element.VR == "SQ":
                for item in element.value:
                    for _ in item.iterall():
                        pass
        except Exception as exc:
            if tag.group == 0x0028:
                raise InputFileError(
                    path, f"damaged attribute {tag}: {_one_line(exc, 120)}"
                ) from None
            del ds[tag]


def _open_deflated(path: Path, raw: bool, syntax: UID, has_meta: bool) -> _Opened:
    """Deflated data sets are inflated by pydicom as a whole: read them fully."""
    try:
        ds = pydicom.dcmread(path, force=raw)
    except Exception as exc:
        raise InputFileError(
            path, f"unreadable deflated DICOM data set: {_one_line(exc)}"
        ) from None
    _drop_damaged_elements(ds, path)
    for tag, name in _FLOAT_PIXEL_DATA.items():
        if tag in ds:
            raise InputFileError(path, f"{name.lower()} (a parametric map), not a radiograph")
    if "PixelData" not in ds:
        return _Opened(ds, syntax, has_meta, None, deflated=True)
    value = ds.PixelData or b""
    pixel = _PixelElement(0, len(value), len(value), in_memory=value)
    del ds.PixelData
    return _Opened(ds, syntax, has_meta, pixel, deflated=True)


def _locate_pixel_data(fp: BinaryIO, path: Path, syntax: UID, size: int) -> _PixelElement | None:
    """Read the pixel data element header at the current position (pydicom stops there)."""
    start = fp.tell()
    head = fp.read(8)
    if len(head) < 8:
        return None
    order = "<" if syntax.is_little_endian else ">"
    group, element = struct.unpack(f"{order}HH", head[:4])
    if (group, element) in _FLOAT_PIXEL_DATA:
        name = _FLOAT_PIXEL_DATA[(group, element)]
        raise InputFileError(path, f"{name.lower()} (a parametric map), not a radiograph")
    if (group, element) != _PIXEL_DATA:
        return None
    if syntax.is_implicit_VR:
        (length,) = struct.unpack(f"{order}L", head[4:8])
        offset = start + 8
    elif head[4:6] in _LONG_VRS:
        tail = fp.read(4)
        if len(tail) < 4:
            raise InputFileError(path, "truncated: the file ends inside the pixel data header")
        (length,) = struct.unpack(f"{order}L", tail)
        offset = start + 12
    else:
        (length,) = struct.unpack(f"{order}H", head[6:8])
        offset = start + 8
    available = max(0, size - offset)
    if length != 0xFFFFFFFF:
        return _PixelElement(offset, length, min(length, available))
    # Encapsulated: walk the items (without reading them) up to the sequence delimiter.
    fp.seek(offset)
    position, total = offset, 0
    while True:
        item = fp.read(8)
        if len(item) < 8:
            raise InputFileError(
                path,
                f"truncated: encapsulated pixel data end after {total} bytes "
                "without their sequence delimiter",
            )
        item_group, item_element, item_length = struct.unpack("<HHL", item)
        position += 8
        if (item_group, item_element) == (0xFFFE, 0xE0DD):
            break
        if (item_group, item_element) != (0xFFFE, 0xE000) or item_length == 0xFFFFFFFF:
            raise InputFileError(
                path, f"malformed encapsulated pixel data: unexpected tag at byte {position - 8}"
            )
        if position + item_length > size:
            total += size - position
            raise InputFileError(
                path,
                f"truncated: encapsulated pixel data end after {total} bytes "
                "without their sequence delimiter",
            )
        fp.seek(item_length, os.SEEK_CUR)
        position += item_length
        total += item_length
    return _PixelElement(offset, None, total)


def _int_attribute(
    ds: Dataset, keyword: str, tag: str, path: Path, default: int | None = None
) -> int:
    """An integer attribute (US, SS or IS), or a one-line error naming it."""
    try:
        value = ds.get(keyword)
    except Exception:
        value = raw_text(ds, tag_for_keyword(keyword)) or "?"
    if value is None or value == "":
        if default is not None:
            return default
        raise InputFileError(path, f"missing {keyword} {tag}")
    if not isinstance(value, str | bytes) and hasattr(value, "__getitem__"):
        value = value[0] if len(value) else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        shown = str(value)[:20]
        raise InputFileError(path, f"{keyword} {tag} '{shown}' is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise InputFileError(path, f"{keyword} {tag} '{value}' is not a whole number")
    return int(number)


def _check_image(opened: _Opened, path: Path) -> dict[str, Any]:
    """Reject what cannot be a single-frame greyscale film; return its geometry."""
    ds = opened.ds
    if opened.pixel is None:
        raise InputFileError(path, "no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    samples = _int_attribute(ds, "SamplesPerPixel", "(0028,0002)", path, default=1)
    if photometric not in _MONOCHROME or samples != 1:
        if not photometric:
            if samples != 1:
                raise InputFileError(
                    path, f"{samples} samples per pixel, a lateral film must be grayscale"
                )
            raise InputFileError(path, "missing PhotometricInterpretation (0028,0004)")
        if photometric in ("RGB", "ARGB", "CMYK", "HSV", "PALETTE COLOR") or photometric.startswith(
            "YBR"
        ):
            raise InputFileError(path, f"{photometric} image, a lateral film must be grayscale")
        raise InputFileError(
            path, f"photometric interpretation {photometric[:20]} is not a greyscale film"
        )
    frames_text = raw_text(ds, 0x00280008)
    if frames_text not in (None, ""):
        try:
            frames = int(float(frames_text.split("\\")[0]))
        except ValueError:
            raise InputFileError(
                path, f"NumberOfFrames (0028,0008) '{frames_text[:20]}' is not a number"
            ) from None
        if frames > 1:
            raise InputFileError(path, f"{frames} frames, a lateral film is a single frame")
        if frames < 1:
            raise InputFileError(path, f"NumberOfFrames (0028,0008) is {frames}")
    rows = _int_attribute(ds, "Rows", "(0028,0010)", path)
    columns = _int_attribute(ds, "Columns", "(0028,0011)", path)
    bits_allocated = _int_attribute(ds, "BitsAllocated", "(0028,0100)", path)
    bits_stored = _int_attribute(ds, "BitsStored", "(0028,0101)", path)
    representation = _int_attribute(ds, "PixelRepresentation", "(0028,0103)", path)
    if rows < 1 or columns < 1:
        raise InputFileError(path, f"image size {rows} x {columns} is empty")
    if bits_allocated not in (1, 8, 16, 32, 64) or not 1 <= bits_stored <= bits_allocated:
        raise InputFileError(
            path, f"BitsAllocated {bits_allocated} / BitsStored {bits_stored} are inconsistent"
        )

    syntax = opened.transfer_syntax
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise InputFileError(
            path, f"{_syntax_label(syntax)} cannot be decoded: not supported"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(str(m) for m in decoder.missing_dependencies)
        raise InputFileError(
            path,
            f"{_syntax_label(syntax)} cannot be decoded: no decoding plugin installed"
            + (f" ({missing})" if missing else ""),
        )
    pixel = opened.pixel
    if syntax.is_compressed and pixel.length is not None:
        raise InputFileError(
            path, f"{_syntax_label(syntax)} needs encapsulated pixel data, found native pixel data"
        )
    if not syntax.is_compressed:
        if pixel.length is None:
            raise InputFileError(
                path, f"encapsulated pixel data in an uncompressed {_syntax_label(syntax)}"
            )
        expected = math.ceil(rows * columns * bits_allocated / 8)
        if pixel.available < expected:
            raise InputFileError(
                path, f"truncated: pixel data has {pixel.available} of {expected} bytes"
            )
    return {
        "rows": rows,
        "columns": columns,
        "bits_allocated": bits_allocated,
        "bits_stored": bits_stored,
        "signed": representation == 1,
        "photometric": photometric,
    }


# ----------------------------------------------------------------------------- identity


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    text = str(value).strip(" \x00")
    return text or None


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    digits = text.strip().replace(".", "").replace("-", "")  # ACR-NEMA wrote YYYY.MM.DD
    try:
        return datetime.strptime(digits[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _parse_datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    from pydicom.valuerep import DT

    try:
        value = DT(text.strip())
    except Exception:
        return None
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, value.tzinfo,
    )  # fmt: skip


def _date_and_time(ds: Dataset, date_keyword: str, time_keyword: str) -> datetime | None:
    day = _parse_date(_text(ds, date_keyword))
    clock = _text(ds, time_keyword)
    if day is None or not clock:
        return None
    return _parse_datetime(day.strftime("%Y%m%d") + clock.replace(":", ""))


def _identity(ds: Dataset) -> FilmIdentity:
    instance = _text(ds, "InstanceNumber")
    try:
        instance_number = int(float(instance)) if instance else None
    except ValueError:
        instance_number = None
    acquisition = (
        _parse_datetime(_text(ds, "AcquisitionDateTime"))
        or _date_and_time(ds, "AcquisitionDate", "AcquisitionTime")
        or _date_and_time(ds, "ContentDate", "ContentTime")
    )
    return FilmIdentity(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_parse_date(_text(ds, "PatientBirthDate")),
        accession_number=_text(ds, "AccessionNumber"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_date=_parse_date(_text(ds, "StudyDate")),
        acquisition_datetime=acquisition,
        modality=_text(ds, "Modality"),
        series_description=_text(ds, "SeriesDescription"),
        manufacturer=_text(ds, "Manufacturer"),
        instance_number=instance_number,
    )


# ----------------------------------------------------------------------------- header


def _dicom_header(path: Path, opened: _Opened, geometry: dict[str, Any]) -> FilmHeader:
    ds = opened.ds
    calibration, calibration_warning = calibration_and_warning(ds)
    view, evidence = view_from_sources(dataset_view_tiers(ds, path.name))
    syntax = opened.transfer_syntax
    return FilmHeader(
        path=str(path),
        source_format="dicom",
        rows=geometry["rows"],
        columns=geometry["columns"],
        bits_stored=geometry["bits_stored"],
        photometric_interpretation=geometry["photometric"],
        calibration=calibration,
        calibration_warning=calibration_warning,
        identity=_identity(ds),
        view=view,
        view_evidence=evidence,
        transfer_syntax=str(syntax),
        transfer_syntax_name=syntax.name if syntax.name != str(syntax) else None,
        presentation_intent=_text(ds, "PresentationIntentType"),
    )


def read_film_header(path: str | os.PathLike[str], *, sha256: bool = False) -> FilmHeader:
    """Read a film's metadata without decoding its pixel data.

    Checks everything :func:`load_film` checks before decoding (a DICOM file
    with pixel data, greyscale, one frame, a transfer syntax with a decoder,
    pixel data not truncated) and raises the same errors.  PNG/JPEG/TIFF files
    are decoded (OpenCV has no header-only read).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    sha256 : bool, optional
        Also hash the file's bytes (reads the whole file).

    Returns
    -------
    FilmHeader

    Raises
    ------
    app.errors.InputFileError
        One line naming the file and the problem.
    """
    path = Path(path)
    kind = _sniff(path)
    if kind not in ("dicom", "dicom-raw"):
        header = _load_image(path, kind).header()
        return header if sha256 else _replace_sha(header, None)
    with _quiet():
        opened = _open_dicom(path, raw=kind == "dicom-raw")
        header = _dicom_header(path, opened, _check_image(opened, path))
    return _replace_sha(header, file_sha256(path)) if sha256 else header


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_quiet_previous: Any = None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No pydicom warnings or validation log lines while reading a film.

    pydicom's messages about invalid values quote the values, and a value may
    be a patient's name: they must not reach logs.  What matters for the user
    is reported by this module in its own words.  pydicom's validation mode is
    global: it is switched off by the first reader in and restored by the last
    one out, so threads reading films at once leave it as they found it.
    """
    global _quiet_depth, _quiet_previous
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_previous = pydicom.config.settings.reading_validation_mode
            pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
        _quiet_depth += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                pydicom.config.settings.reading_validation_mode = _quiet_previous


def _replace_sha(header: FilmHeader, digest: str | None) -> FilmHeader:
    from dataclasses import replace

    return replace(header, sha256=digest)


# ----------------------------------------------------------------------------- pixels


def _read_native(path: Path, opened: _Opened, geometry: dict[str, Any]) -> np.ndarray | None:
    """Native little-endian 8/16/32-bit pixel data read straight into one array.

    ``np.fromfile`` fills a fresh array from the file (no intermediate bytes
    object); unused high bits are then cleared (unsigned) or sign-extended
    (signed) in place, as pydicom does (``correct_unused_bits``).  Returns None
    for the encodings this fast path does not handle.
    """
    syntax, pixel = opened.transfer_syntax, opened.pixel
    bits_allocated, bits_stored = geometry["bits_allocated"], geometry["bits_stored"]
    if (
        opened.deflated
        or syntax.is_compressed
        or not syntax.is_little_endian
        or bits_allocated not in (8, 16, 32)
        or pixel is None
        or pixel.length is None
    ):
        return None
    kind = "i" if geometry["signed"] else "u"
    dtype = np.dtype(f"<{kind}{bits_allocated // 8}")
    count = geometry["rows"] * geometry["columns"]
    with path.open("rb") as fp:
        fp.seek(pixel.offset)
        array = np.fromfile(fp, dtype=dtype, count=count)
    if array.size != count:  # pragma: no cover - caught by the length check before
        raise InputFileError(
            path, f"truncated: pixel data has {array.nbytes} of {count * dtype.itemsize} bytes"
        )
    if bits_stored < bits_allocated:
        if geometry["signed"]:
            shift = bits_allocated - bits_stored
            array <<= shift
            array >>= shift
        else:
            np.bitwise_and(array, (1 << bits_stored) - 1, out=array)
    return array.reshape(geometry["rows"], geometry["columns"])


def _decode_file(path: Path, syntax: UID, options: dict[str, Any]) -> np.ndarray:
    """Decode from the open file; compressed data by pylibjpeg first, then any plugin.

    pylibjpeg's JPEG 2000 decoder peaks at less than half of GDCM's memory on a
    4000 x 5000 film (112 MB against 257 MB); pydicom would try GDCM first.
    """
    from pydicom.pixels import get_decoder, pixel_array

    if syntax.is_compressed and "pylibjpeg" in get_decoder(syntax).available_plugins:
        try:
            with path.open("rb") as fp:
                return pixel_array(fp, decoding_plugin="pylibjpeg", **options)
        except (MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # also a decoder's Rust panic; every plugin is tried next
            pass
    with path.open("rb") as fp:
        return pixel_array(fp, **options)


def _decode(path: Path, opened: _Opened) -> np.ndarray:
    from pydicom.pixels import pixel_array

    syntax = opened.transfer_syntax
    options: dict[str, Any] = {"view_only": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if opened.deflated:
                ds = opened.ds.copy()
                ds.PixelData = opened.pixel.in_memory
                ds.file_meta = opened.ds.file_meta
                if not opened.has_meta_syntax:
                    ds.file_meta.TransferSyntaxUID = syntax
                array = pixel_array(ds, **options)
            else:
                if not opened.has_meta_syntax:
                    options["transfer_syntax_uid"] = syntax
                array = _decode_file(path, syntax, options)
    except InputFileError:
        raise
    except MemoryError:
        raise InputFileError(path, "not enough memory to decode the pixel data") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a decoder's Rust panic is a BaseException
        what = _syntax_label(syntax) if syntax.is_compressed else "pixel data"
        raise InputFileError(path, f"{what} cannot be decoded: {_one_line(exc)}") from None
    return array


def _modality_lut(path: Path, array: np.ndarray, ds: Dataset) -> np.ndarray:
    """Stored values -> modality values (PS3.3 C.11.1), as pydicom defines them."""
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return apply_modality_lut(array, ds)
        except Exception as exc:
            raise InputFileError(
                path, f"Modality LUT Sequence unusable: {_one_line(exc)}"
            ) from None
    slope_text, intercept_text = raw_text(ds, 0x00281053), raw_text(ds, 0x00281052)
    if not slope_text or not intercept_text:
        return array
    try:
        slope = float(slope_text.split("\\")[0])
        intercept = float(intercept_text.split("\\")[0])
    except ValueError:
        raise InputFileError(
            path,
            f"RescaleSlope '{slope_text[:20]}' / RescaleIntercept '{intercept_text[:20]}' "
            "are not numbers",
        ) from None
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise InputFileError(path, "RescaleSlope / RescaleIntercept are not finite")
    if slope == 1.0 and intercept == 0.0:
        return array
    out = array.astype(np.float32)
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out


def _voi_lut(ds: Dataset) -> VoiLut | None:
    sequence = ds.get("VOILUTSequence")
    if not sequence:
        return None
    item = sequence[0]
    try:
        descriptor = [int(v) for v in item.LUTDescriptor]
        entries = descriptor[0] or 65536
        first, bits = descriptor[1], descriptor[2]
        if int(ds.get("PixelRepresentation", 0) or 0) == 1 and first > 32767:
            first -= 65536  # the descriptor's first value is SS for signed pixels
        element = item["LUTData"]
        value = element.value
        if isinstance(value, bytes | bytearray):
            little = ds.original_encoding[1] is not False
            if len(value) == entries and bits <= 8:
                data = np.frombuffer(value, dtype=np.uint8)
            else:
                data = np.frombuffer(value, dtype="<u2" if little else ">u2")
        else:
            data = np.asarray(list(value) if not np.isscalar(value) else [value], dtype=np.int64)
        data = np.asarray(data[:entries], dtype=np.int64)
    except Exception:
        return None
    if data.size == 0:
        return None
    explanation = str(item.get("LUTExplanation", "") or "")
    return VoiLut(first_mapped=first, bits=bits, data=data, explanation=explanation)


def _first_number(ds: Dataset, tag: int) -> float | None:
    text = raw_text(ds, tag)
    if not text:
        return None
    try:
        value = float(text.split("\\")[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _percentile_window(pixels: np.ndarray) -> tuple[float, float]:
    step = max(1, int(math.sqrt(pixels.size / 262144)))
    sample = pixels[::step, ::step]
    low, high = np.percentile(sample, _PERCENTILES)
    low, high = float(low), float(high)
    return ((low + high) / 2.0, max(high - low, 1.0))


def _window(
    ds: Dataset | None, pixels: np.ndarray, voi_lut: VoiLut | None
) -> tuple[tuple[float, float], str, str]:
    """``(center, width)``, where it came from, and the VOI LUT Function."""
    function = "LINEAR"
    if ds is not None:
        function = (raw_text(ds, 0x00281056) or "LINEAR").upper()
        if function not in _VOI_FUNCTIONS:
            function = "LINEAR"
        center, width = _first_number(ds, 0x00281050), _first_number(ds, 0x00281051)
        usable = width is not None and (width >= 1.0 or (function != "LINEAR" and width > 0.0))
        if center is not None and usable:
            source = "WindowCenter/WindowWidth (0028,1050/0028,1051)"
            explanation = raw_text(ds, 0x00281055)
            if explanation:
                source += f" '{explanation.split(chr(92))[0][:32]}'"
            return (center, width), source, function
    if voi_lut is not None:
        entries = voi_lut.data.size
        center = voi_lut.first_mapped + (entries - 1) / 2.0 + 0.5
        return (center, float(entries)), "input range of the VOI LUT Sequence", function
    window = _percentile_window(pixels)
    return window, "pixel values, 0.5th-99.5th percentile", "LINEAR"


def _load_dicom(path: Path, kind: str) -> Film:
    opened = _open_dicom(path, raw=kind == "dicom-raw")
    geometry = _check_image(opened, path)
    header = _dicom_header(path, opened, geometry)
    stored = _read_native(path, opened, geometry)
    if stored is None:
        stored = _decode(path, opened)
    if stored.shape != (geometry["rows"], geometry["columns"]):
        raise InputFileError(
            path,
            f"decoded pixel data have shape {stored.shape}, "
            f"expected {geometry['rows']} x {geometry['columns']}",
        )
    if stored.dtype.byteorder == ">":
        stored = stored.astype(stored.dtype.newbyteorder("="))  # big endian files only
    pixels = _modality_lut(path, stored, opened.ds)
    del stored
    pixels.flags.writeable = False
    voi_lut = _voi_lut(opened.ds)
    window, window_source, function = _window(opened.ds, pixels, voi_lut)
    return Film(
        path=str(path),
        pixels=pixels,
        rows=header.rows,
        columns=header.columns,
        bits_stored=header.bits_stored,
        photometric_interpretation=header.photometric_interpretation,
        window=window,
        window_source=window_source,
        voi_lut_function=function,
        voi_lut=voi_lut,
        invert=header.photometric_interpretation == "MONOCHROME1",
        calibration=header.calibration,
        calibration_warning=header.calibration_warning,
        identity=header.identity,
        view=header.view,
        view_evidence=header.view_evidence,
        sha256=file_sha256(path),
        source_format="dicom",
        transfer_syntax=header.transfer_syntax,
        transfer_syntax_name=header.transfer_syntax_name,
        presentation_intent=header.presentation_intent,
    )


# ----------------------------------------------------------------------------- PNG/JPEG/TIFF


@contextlib.contextmanager
def _opencv_silent() -> Iterator[None]:
    """Silence OpenCV's own log lines (e.g. ``[ERROR:0@0.3] ... IHDR chunk shall be
    first``) while it decodes: the user gets our one-line reason, not decoder noise."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _load_image(path: Path, kind: str) -> Film:
    import cv2

    name = kind.upper()
    if kind == "tiff":
        try:
            with _opencv_silent():
                pages = int(cv2.imcount(str(path)))
        except cv2.error:
            pages = 1
        if pages > 1:
            raise InputFileError(path, f"{pages} frames, a lateral film is a single frame")
    if kind == "jpeg":  # libjpeg fills a truncated stream with grey and says nothing
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            tail = handle.read().rstrip(b"\x00\r\n\t ")
        if not tail.endswith(b"\xff\xd9"):
            raise InputFileError(path, "truncated: JPEG image without its end-of-image marker")
    with _opencv_silent():
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputFileError(path, f"cannot be decoded as a {name} image")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels in (1, 2):  # grey (+ alpha)
            image = image[..., 0]
        else:
            blue, green, red = image[..., 0], image[..., 1], image[..., 2]
            if not (np.array_equal(blue, green) and np.array_equal(blue, red)):
                raise InputFileError(path, "RGB image, a lateral film must be grayscale")
            image = blue
        image = np.ascontiguousarray(image)
    if image.ndim != 2:
        raise InputFileError(path, f"{image.ndim}-dimensional {name} image, expected 2-D")
    image.flags.writeable = False
    calibration = Calibration.uncalibrated(f"{name} file: no DICOM pixel spacing")
    view, evidence = view_from_sources(
        [[("file name", path.name, None)], [("folder name", path.resolve().parent.name, None)]]
    )
    window = _percentile_window(image)
    return Film(
        path=str(path),
        pixels=image,
        rows=int(image.shape[0]),
        columns=int(image.shape[1]),
        bits_stored=int(image.dtype.itemsize * 8),
        photometric_interpretation="MONOCHROME2",
        window=window,
        window_source="pixel values, 0.5th-99.5th percentile",
        voi_lut_function="LINEAR",
        voi_lut=None,
        invert=False,
        calibration=calibration,
        calibration_warning=calibration.warning,
        identity=FilmIdentity(),
        view=view,
        view_evidence=evidence,
        sha256=file_sha256(path),
        source_format=kind,
    )


def load_film(path: str | os.PathLike[str]) -> Film:
    """Load a lateral film: DICOM (any transfer syntax with a decoder) or PNG/JPEG/TIFF.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  DICOM files are recognised by their ``DICM`` preamble (a
        data set without preamble is read too); PNG, JPEG and TIFF by their
        signature, whatever the file name.

    Returns
    -------
    Film
        Pixel values after the Modality LUT, display window, calibration with
        its source, identity, view.

    Raises
    ------
    app.errors.InputFileError
        One line naming the file and the problem: not a DICOM file, truncated,
        no pixel data, transfer syntax without decoder, colour, multi-frame.
        Unusable pixel spacing is not an error: the film is then uncalibrated
        and ``calibration_warning`` says why.
    """
    path = Path(path)
    kind = _sniff(path)
    if kind in ("dicom", "dicom-raw"):
        with _quiet():
            return _load_dicom(path, kind)
    return _load_image(path, kind)
