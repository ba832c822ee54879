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
import io
import logging
import math
import os
import re
import struct
import threading
import warnings
import zlib
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
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from app.dicom_io._calibration import calibration_and_warning, raw_text
from app.dicom_io._codestream import CodestreamError, check_rle, codestream_image, image_file_size
from app.dicom_io._digest import FileDigest, file_sha256
from app.dicom_io._film import Film, FilmHeader, FilmIdentity, VoiLut
from app.dicom_io._imagecodecs import register as _register_imagecodecs
from app.dicom_io._limits import (
    check_budget,
    check_regular_file,
    memory_budget_bytes,
    run_guarded,
    silenced_stderr,
)
from app.dicom_io._view import dataset_view_tiers, view_from_sources
from app.errors import InputFileError
from measure import Calibration

__all__ = ["DECODING_PLUGINS", "file_sha256", "load_film", "quiet_pydicom", "read_film_header"]

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
_COLOUR_PHOTOMETRICS = frozenset(
    {"RGB", "ARGB", "CMYK", "HSV", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422",
     "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "XYB"}
)  # fmt: skip
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_PERCENTILES = (0.5, 99.5)
HTJ2KLossless = UID("1.2.840.10008.1.2.4.201")
HTJ2KLosslessRPCL = UID("1.2.840.10008.1.2.4.202")
HTJ2K = UID("1.2.840.10008.1.2.4.203")
_JPEG_SYNTAXES = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1})
_JPEG_LS_SYNTAXES = frozenset({JPEGLSLossless, JPEGLSNearLossless})
_J2K_SYNTAXES = frozenset({JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K})

#: Decoding plugins per transfer syntax, fastest first (``benchmarks/bench_load.py
#: --decoders`` measures them).  GDCM aborts the process on some damaged
#: codestreams (C++ exceptions, ``std::bad_alloc``): it only ever runs in a
#: forked child (:func:`app.dicom_io._limits.run_guarded`).  A plugin that
#: fails hands the film to the next one.
DECODING_PLUGINS: dict[str, tuple[str, ...]] = {
    JPEGBaseline8Bit: ("pillow", "pylibjpeg"),
    JPEGExtended12Bit: ("pylibjpeg", "pillow"),
    JPEGLossless: ("imagecodecs", "pylibjpeg", "gdcm"),
    JPEGLosslessSV1: ("imagecodecs", "pylibjpeg", "gdcm"),
    JPEGLSLossless: ("pyjpegls", "pylibjpeg"),
    JPEGLSNearLossless: ("pyjpegls", "pylibjpeg"),
    JPEG2000Lossless: ("gdcm", "pylibjpeg", "pillow"),
    JPEG2000: ("gdcm", "pylibjpeg", "pillow"),
    HTJ2KLossless: ("pylibjpeg",),
    HTJ2KLosslessRPCL: ("pylibjpeg",),
    HTJ2K: ("pylibjpeg",),
    RLELossless: ("pylibjpeg", "pydicom"),
}
_GUARDED_PLUGINS = frozenset({"gdcm"})
_register_imagecodecs()  # libjpeg-turbo as a pydicom plugin named "imagecodecs"


@dataclass(frozen=True, slots=True)
class _PixelElement:
    """Where the pixel data are in the file (value offset, declared length)."""

    offset: int
    length: int | None  # None: undefined length (encapsulated)
    available: int  # bytes of the value actually in the file
    in_memory: bytearray | memoryview | None = None  # deflated files: the inflated value
    fragments: tuple[tuple[int, int], ...] = ()  # encapsulated: (offset, length) of each item


@dataclass(frozen=True, slots=True)
class _Opened:
    ds: Dataset
    transfer_syntax: UID
    has_meta_syntax: bool
    pixel: _PixelElement | None
    deflated: bool
    budget: int = 0  # memory budget of this film, bytes
    deflate_start: int = 0  # deflated files: where the deflated stream starts in the file


# ----------------------------------------------------------------------------- sniffing


def _sniff(path: Path) -> str:
    """``"dicom"``, ``"dicom-raw"`` (no preamble), ``"png"``, ``"jpeg"`` or ``"tiff"``.

    Only a regular file is opened: a named pipe, socket or device is refused
    from its ``os.stat`` alone (opening a pipe blocks until a writer comes).
    """
    check_regular_file(path)
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


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- DICOM header


_UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")


def _syntax_label(uid: UID) -> str:
    name = uid.name if uid.name != str(uid) else "unknown"
    return f"transfer syntax {uid} ({name})"


def _transfer_syntax(path: Path, value: Any) -> UID:
    """The file meta's TransferSyntaxUID, refused without quoting it when it is not a UID.

    A damaged length field makes the value swallow the header that follows
    (names, dates, accession numbers): only a well-formed UID is ever shown.
    """
    text = str(value).strip(" \x00") if isinstance(value, str) else None
    if text is None or len(text) > 64 or not _UID_PATTERN.fullmatch(text):
        raise InputFileError(
            path, "damaged file meta: TransferSyntaxUID (0002,0010) is not a valid UID"
        )
    return UID(text)


def _open_dicom(path: Path, raw: bool, budget: int) -> _Opened:
    """Parse the header (everything before the pixel data) and locate the pixel data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not raw and _deflated_meta(path):  # pydicom would inflate the whole data set
            return _open_deflated(path, raw, UID(DeflatedExplicitVRLittleEndian), budget)
        with path.open("rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=raw)
            except InvalidDicomError:
                raise InputFileError(
                    path, "not a DICOM file (no DICM preamble and not an image)"
                ) from None
            except Exception as exc:  # its message may quote header bytes: never shown
                raise InputFileError(
                    path, f"unreadable DICOM header ({type(exc).__name__})"
                ) from None
            try:
                meta_syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
            except Exception:  # an unknown VR in the meta group: converted lazily
                raise InputFileError(
                    path, "damaged file meta: TransferSyntaxUID (0002,0010) cannot be read"
                ) from None
            if meta_syntax is not None:
                syntax = _transfer_syntax(path, meta_syntax)
            else:
                implicit, little = ds.original_encoding
                if implicit is None or little is None:
                    raise InputFileError(path, "no transfer syntax and no readable data set")
                syntax = (
                    ImplicitVRLittleEndian
                    if implicit
                    else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
                )
            if not syntax.is_transfer_syntax:
                raise InputFileError(
                    path, f"{_syntax_label(syntax)} cannot be decoded: not supported"
                )
            if syntax.is_deflated:
                return _open_deflated(path, raw, syntax, budget)
            _drop_damaged_elements(ds, path)
            if len(ds) == 0:
                raise InputFileError(path, "not a DICOM file (no DICM preamble and not an image)")
            pixel = _locate_pixel_data(fp, path, syntax, size)
    return _Opened(ds, syntax, meta_syntax is not None, pixel, deflated=False, budget=budget)


def _deflated_meta(path: Path) -> bool:
    """Whether the file meta names the Deflated transfer syntax (group 0002 only is read)."""
    try:
        value = pydicom.filereader.read_file_meta_info(path).get("TransferSyntaxUID")
    except Exception:  # a damaged meta group: the main parse reports it
        return False
    return isinstance(value, str) and value.strip(" \x00") == DeflatedExplicitVRLittleEndian


def _drop_damaged_elements(ds: Dataset, path: Path) -> None:
    """Convert every element now; drop those pydicom cannot parse.

    pydicom converts elements lazily, so a damaged one (an unknown VR, a
    broken sequence) would otherwise raise wherever it is first read.  A
    damaged image pixel attribute (group 0028) makes the film unreadable; any
    other damaged attribute is dropped and the film is read without it.  The
    message names the tag, never the value (it may be a patient's name).
    """
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
            if element.VR == "SQ":
                for item in element.value:
                    for _ in item.iterall():
                        pass
        except Exception:
            if tag.group == 0x0028:
                raise InputFileError(path, f"damaged attribute {tag}") from None
            del ds[tag]


# ----------------------------------------------------------------------------- deflate

_INFLATE_HEADER_STEPS = (1 << 20, 1 << 23, 1 << 26)  # a header beyond 64 MiB is refused


def _meta_end(fp: BinaryIO, raw: bool) -> int:
    """Byte offset just after the file meta group (0002), which deflate leaves uncompressed."""
    fp.seek(0 if raw else 132)
    while True:
        start = fp.tell()
        head = fp.read(8)
        if len(head) < 8:
            return start
        group, _ = struct.unpack("<HH", head[:4])
        if group != 0x0002:
            return start
        if head[4:6] in _LONG_VRS:
            (length,) = struct.unpack("<L", fp.read(4))
            fp.seek(length, os.SEEK_CUR)
        else:
            (length,) = struct.unpack("<H", head[6:8])
            fp.seek(length, os.SEEK_CUR)


class _Inflater:
    """Inflate a file's deflated data set from ``start``, never beyond a size limit."""

    def __init__(self, path: Path, start: int) -> None:
        self._fp = path.open("rb")
        self._fp.seek(start)
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending = b""
        self.buffer = bytearray()
        self.ended = False  # the deflate stream or the file ended

    def close(self) -> None:
        self._fp.close()

    def _step(self, most: int) -> bytes:
        if not self._pending:
            self._pending = self._fp.read(1 << 16)
            if not self._pending:
                self.ended = True
                return b""
        out = self._zlib.decompress(self._pending, most)
        self._pending = self._zlib.unconsumed_tail
        if self._zlib.eof:
            self.ended = True
        return out

    def fill(self, limit: int) -> None:
        """Inflate into ``buffer`` until it holds ``limit`` bytes or the stream ends."""
        while len(self.buffer) < limit and not self.ended:
            self.buffer += self._step(min(limit - len(self.buffer), 1 << 22))

    def count(self, limit: int) -> int:
        """Inflate and discard; the number of bytes beyond ``buffer`` (at most ``limit``)."""
        total = 0
        while total < limit and not self.ended:
            total += len(self._step(min(limit - total, 1 << 22)))
        return total


def _stop_at_pixels(tag: Any, vr: Any, length: int) -> bool:
    return int(tag) >= 0x7FE00000


def _open_deflated(path: Path, raw: bool, syntax: UID, budget: int) -> _Opened:
    """Parse a deflated data set's header, inflating no more than the header needs.

    pydicom inflates the whole data set into memory before parsing it: a
    small file declaring gigabytes (a decompression bomb) would fill the
    memory.  Here the header is parsed from the first MiB inflated (up to
    64 MiB for a huge header); the pixel data are inflated later, after their
    declared size has passed the memory budget (:func:`_inflate_pixels`).
    """
    from pydicom.filereader import read_dataset

    try:
        with path.open("rb") as fp:
            start = _meta_end(fp, raw)
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception as exc:
        raise InputFileError(path, f"unreadable DICOM header ({type(exc).__name__})") from None
    inflater = _Inflater(path, start)
    try:
        for limit in _INFLATE_HEADER_STEPS:
            inflater.fill(limit)
            stream = io.BytesIO(bytes(inflater.buffer))
            try:
                ds = read_dataset(stream, False, True, stop_when=_stop_at_pixels)
            except Exception:
                ds = None
            position = stream.tell()
            at_pixels = inflater.buffer[position : position + 2] == b"\xe0\x7f"
            if ds is not None and (at_pixels or inflater.ended):
                break
        else:
            raise InputFileError(path, "deflated data set: header larger than 64 MB")
    except zlib.error:
        raise InputFileError(path, "deflated data set is damaged (not a valid deflate stream)") from None
    finally:
        inflater.close()
    ds.file_meta = meta
    _drop_damaged_elements(ds, path)
    if len(ds) == 0:
        raise InputFileError(path, "deflated data set is empty or damaged")
    head = bytes(inflater.buffer[position : position + 12])
    if len(head) < 12 or head[:2] != b"\xe0\x7f":
        return _Opened(ds, syntax, True, None, deflated=True, budget=budget, deflate_start=start)
    group, element = struct.unpack("<HH", head[:4])
    if (group, element) in _FLOAT_PIXEL_DATA:
        name = _FLOAT_PIXEL_DATA[(group, element)]
        raise InputFileError(path, f"{name.lower()} (a parametric map), not a radiograph")
    if (group, element) != _PIXEL_DATA:
        return _Opened(ds, syntax, True, None, deflated=True, budget=budget, deflate_start=start)
    (length,) = struct.unpack("<L", head[8:12])
    if length == 0xFFFFFFFF:
        raise InputFileError(path, "deflated data set with encapsulated pixel data")
    pixel = _PixelElement(position + 12, length, length)
    return _Opened(ds, syntax, True, pixel, deflated=True, budget=budget, deflate_start=start)


def _inflate_pixels(path: Path, opened: _Opened, keep: bool) -> _Opened:
    """Inflate a deflated file's pixel data (kept in memory, or only counted)."""
    from dataclasses import replace

    pixel = opened.pixel
    assert pixel is not None and pixel.length is not None
    end = pixel.offset + pixel.length
    inflater = _Inflater(path, opened.deflate_start)
    try:
        if keep:
            inflater.fill(end)
            available = max(0, len(inflater.buffer) - pixel.offset)
        else:
            inflater.fill(pixel.offset)
            available = inflater.count(pixel.length)
    except zlib.error:
        raise InputFileError(path, "deflated data set is damaged (not a valid deflate stream)") from None
    finally:
        inflater.close()
    value = memoryview(inflater.buffer)[pixel.offset : end] if keep else None
    return replace(opened, pixel=replace(pixel, available=available, in_memory=value))


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
    items: list[tuple[int, int]] = []
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
        items.append((position, item_length))
        fp.seek(item_length, os.SEEK_CUR)
        position += item_length
        total += item_length
    if len(items) > 1 << 16:
        raise InputFileError(path, f"encapsulated pixel data in {len(items)} fragments")
    return _PixelElement(offset, None, total, fragments=tuple(items))


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
    except (TypeError, ValueError, OverflowError):
        raise InputFileError(path, f"{keyword} {tag} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise InputFileError(path, f"{keyword} {tag} is not a whole number")
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
        if photometric in _COLOUR_PHOTOMETRICS:
            raise InputFileError(path, f"{photometric} image, a lateral film must be grayscale")
        raise InputFileError(
            path, "PhotometricInterpretation (0028,0004) is not MONOCHROME1/2 (not a greyscale film)"
        )
    frames_text = raw_text(ds, 0x00280008)
    if frames_text not in (None, ""):
        try:
            frames = int(float(frames_text.split("\\")[0]))
        except (ValueError, OverflowError):
            raise InputFileError(path, "NumberOfFrames (0028,0008) is not a number") from None
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
    check_budget(path, rows, columns, samples, opened.budget)

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
    else:
        _check_codestream(path, opened, rows, columns, bits_allocated)
    return {
        "rows": rows,
        "columns": columns,
        "bits_allocated": bits_allocated,
        "bits_stored": bits_stored,
        "signed": representation == 1,
        "photometric": photometric,
    }


def _frame_bytes(path: Path, pixel: _PixelElement, budget: int) -> bytes:
    """The single frame's codestream: every fragment after the Basic Offset Table."""
    fragments = pixel.fragments[1:]
    total = sum(length for _, length in fragments)
    if total > budget:
        raise InputFileError(path, f"compressed pixel data of {total // 10**6} MB exceed the memory budget")
    parts = []
    with path.open("rb") as fp:
        for offset, length in fragments:
            fp.seek(offset)
            parts.append(fp.read(length))
    return b"".join(parts)


def _codestream_family(syntax: UID) -> str | None:
    if syntax in _JPEG_LS_SYNTAXES:
        return "jpeg-ls"
    if syntax in _J2K_SYNTAXES:
        return "j2k"
    if syntax in _JPEG_SYNTAXES:
        return "jpeg"
    if syntax == RLELossless:
        return "rle"
    return None


def _check_codestream(
    path: Path, opened: _Opened, rows: int, columns: int, bits_allocated: int
) -> None:
    """Refuse a compressed frame that is cut short or declares another image size.

    The decoder allocates what its codestream declares, not what the DICOM
    header says: a JPEG-LS stream declaring 65535 x 65535 aborts GDCM with
    ``std::bad_alloc``.  A stream without its end marker was cut short: libjpeg
    would fill the missing rows with garbage and return a film.
    """
    pixel, syntax = opened.pixel, opened.transfer_syntax
    family = _codestream_family(syntax)
    if family is None or pixel is None:
        return
    if len(pixel.fragments) < 2:
        raise InputFileError(path, "encapsulated pixel data without a frame")
    frame = _frame_bytes(path, pixel, opened.budget)
    try:
        if family == "rle":
            check_rle(frame, rows, columns, bits_allocated)
            return
        declared = codestream_image(frame, family)
    except CodestreamError as exc:
        reason = str(exc)
        if not reason.startswith("truncated"):
            reason = f"{_syntax_label(syntax)} cannot be decoded: {reason}"
        raise InputFileError(path, reason) from None
    if (declared.rows, declared.columns) != (rows, columns):
        raise InputFileError(
            path,
            f"{_syntax_label(syntax)} cannot be decoded: the codestream declares "
            f"{declared.columns} x {declared.rows} pixels, the DICOM header "
            f"{columns} x {rows} (Columns x Rows)",
        )
    if declared.components != 1:
        raise InputFileError(
            path,
            f"{_syntax_label(syntax)} cannot be decoded: the codestream has "
            f"{declared.components} components, a film has one",
        )


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


def _integer(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(float(text)) if text else None
    except (ValueError, OverflowError):
        return None


def _identity(ds: Dataset) -> FilmIdentity:
    instance_number = _integer(ds, "InstanceNumber")
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
        series_number=_integer(ds, "SeriesNumber"),
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


def read_film_header(
    path: str | os.PathLike[str], *, sha256: bool = False, memory_budget_mb: float | None = None
) -> FilmHeader:
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
    memory_budget_mb : float, optional
        Refuse a film whose decoding would need more memory (MB); default:
        ``LUMBAR_INSTABILITY_MEMORY_BUDGET_MB`` or 2048.  A deflated file's
        pixel data are inflated in blocks and counted, never kept.

    Returns
    -------
    FilmHeader

    Raises
    ------
    app.errors.InputFileError
        One line naming the file and the problem.
    """
    path = Path(path)
    budget = memory_budget_bytes(memory_budget_mb)
    kind = _sniff(path)
    if kind not in ("dicom", "dicom-raw"):
        header = _load_image(path, kind, budget).header()
        return header if sha256 else _replace_sha(header, None)
    with _quiet():
        opened = _open_dicom(path, raw=kind == "dicom-raw", budget=budget)
        geometry = _check_image(opened, path)
        if opened.deflated:
            opened = _inflate_pixels(path, opened, keep=False)
            _check_inflated(path, opened, geometry)
        header = _dicom_header(path, opened, geometry)
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
    logger = logging.getLogger("pydicom")
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_previous = pydicom.config.settings.reading_validation_mode
            pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
            logger.addFilter(_drop_record)
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
                logger.removeFilter(_drop_record)


def _drop_record(record: logging.LogRecord) -> bool:
    """A logging filter that drops every record (pydicom's quote attribute values)."""
    return False


quiet_pydicom = _quiet


def _check_inflated(path: Path, opened: _Opened, geometry: dict[str, Any]) -> None:
    expected = math.ceil(geometry["rows"] * geometry["columns"] * geometry["bits_allocated"] / 8)
    if opened.pixel is not None and opened.pixel.available < expected:
        raise InputFileError(
            path, f"truncated: pixel data has {opened.pixel.available} of {expected} bytes"
        )


def _replace_sha(header: FilmHeader, digest: str | None) -> FilmHeader:
    from dataclasses import replace

    return replace(header, sha256=digest)


# ----------------------------------------------------------------------------- pixels


def _read_native(path: Path, opened: _Opened, geometry: dict[str, Any]) -> np.ndarray | None:
    """Native little-endian 8/16/32-bit pixel data read straight into one array.

    ``np.fromfile`` fills a fresh array from the file (no intermediate bytes
    object; a deflated file's inflated value is used in place); unused high bits are then cleared (unsigned) or sign-extended
    (signed) in place, as pydicom does (``correct_unused_bits``).  Returns None
    for the encodings this fast path does not handle.
    """
    syntax, pixel = opened.transfer_syntax, opened.pixel
    bits_allocated, bits_stored = geometry["bits_allocated"], geometry["bits_stored"]
    if (
        syntax.is_compressed
        or not syntax.is_little_endian
        or bits_allocated not in (8, 16, 32)
        or pixel is None
        or pixel.length is None
    ):
        return None
    kind = "i" if geometry["signed"] else "u"
    dtype = np.dtype(f"<{kind}{bits_allocated // 8}")
    count = geometry["rows"] * geometry["columns"]
    if opened.deflated:  # inflated into memory, already checked against the budget
        if pixel.in_memory is None or pixel.available < count * dtype.itemsize:
            raise InputFileError(
                path,
                f"truncated: pixel data has {pixel.available} of {count * dtype.itemsize} bytes",
            )
        array = np.frombuffer(pixel.in_memory, dtype=dtype, count=count)
    else:
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


def _output_dtype(geometry: dict[str, Any]) -> np.dtype:
    kind = "i" if geometry["signed"] else "u"
    return np.dtype(f"{kind}{max(1, geometry['bits_allocated'] // 8)}")


def _decode_file(
    path: Path, syntax: UID, options: dict[str, Any], geometry: dict[str, Any]
) -> np.ndarray:
    """Decode compressed pixel data with the plugins of :data:`DECODING_PLUGINS`, in order.

    Every plugin reads from the open file.  GDCM runs in a forked child
    (:func:`run_guarded`): an abort there costs the film, not the process.
    """
    from pydicom.pixels import get_decoder, pixel_array

    available = get_decoder(syntax).available_plugins
    plugins = [p for p in DECODING_PLUGINS.get(str(syntax), available) if p in available]
    if not hasattr(os, "fork"):
        plugins = [p for p in plugins if p not in _GUARDED_PLUGINS]
    if not plugins:
        raise InputFileError(path, f"{_syntax_label(syntax)} cannot be decoded: no safe decoder")

    def decode(plugin: str) -> np.ndarray:
        with path.open("rb") as fp, silenced_stderr():
            return pixel_array(fp, decoding_plugin=plugin, **options)

    problems = []
    for plugin in plugins:
        try:
            if plugin in _GUARDED_PLUGINS:
                shape = (geometry["rows"], geometry["columns"])
                return run_guarded(
                    lambda plugin=plugin: decode(plugin), shape, _output_dtype(geometry)
                )
            return decode(plugin)
        except (MemoryError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # also a decoder's Rust panic; the next plugin is tried
            problems.append(f"{plugin}: {_decoder_message(exc)}")
    raise InputFileError(
        path, f"{_syntax_label(syntax)} cannot be decoded: {'; '.join(problems)}"
    )


def _decoder_message(exc: BaseException) -> str:
    """A decoder's complaint on one line, without pydicom's preamble."""
    text = _one_line(exc, 160)
    prefix = "Unable to decode as exceptions were raised by all available plugins: "
    return text.removeprefix(prefix)


def _decode(path: Path, opened: _Opened, geometry: dict[str, Any]) -> np.ndarray:
    syntax = opened.transfer_syntax
    options: dict[str, Any] = {"view_only": True}
    if not opened.has_meta_syntax:
        options["transfer_syntax_uid"] = syntax
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if syntax.is_compressed:
                return _decode_file(path, syntax, options, geometry)
            from pydicom.pixels import pixel_array

            if opened.deflated:  # e.g. 1-bit pixels: pydicom unpacks the inflated value
                ds = opened.ds.copy()
                ds.PixelData = bytes(opened.pixel.in_memory)
                ds.file_meta = opened.ds.file_meta
                return pixel_array(ds, view_only=True)
            with path.open("rb") as fp:
                return pixel_array(fp, **options)
    except InputFileError:
        raise
    except MemoryError:
        raise InputFileError(path, "not enough memory to decode the pixel data") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a decoder's Rust panic is a BaseException
        raise InputFileError(path, f"pixel data cannot be decoded: {_one_line(exc)}") from None


def _modality_lut(path: Path, array: np.ndarray, ds: Dataset) -> np.ndarray:
    """Stored values -> modality values (PS3.3 C.11.1), as pydicom defines them."""
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return apply_modality_lut(array, ds)
        except Exception:
            raise InputFileError(path, "Modality LUT Sequence (0028,3000) unusable") from None
    slope_text, intercept_text = raw_text(ds, 0x00281053), raw_text(ds, 0x00281052)
    if not slope_text or not intercept_text:
        return array
    try:
        slope = float(slope_text.split("\\")[0])
        intercept = float(intercept_text.split("\\")[0])
    except (ValueError, OverflowError):
        raise InputFileError(
            path, "RescaleSlope (0028,1053) / RescaleIntercept (0028,1052) are not numbers"
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
                source += f" {explanation.split(chr(92))[0][:32]!r}"
            return (center, width), source, function
    if voi_lut is not None:
        entries = voi_lut.data.size
        center = voi_lut.first_mapped + (entries - 1) / 2.0 + 0.5
        return (center, float(entries)), "input range of the VOI LUT Sequence", function
    window = _percentile_window(pixels)
    return window, "pixel values, 0.5th-99.5th percentile", "LINEAR"


def _load_dicom(path: Path, kind: str, budget: int) -> Film:
    digest = FileDigest(path)  # the file's identity before anything is read
    opened = _open_dicom(path, raw=kind == "dicom-raw", budget=budget)
    geometry = _check_image(opened, path)
    return _decode_dicom(path, opened, geometry, digest)


def _decode_dicom(
    path: Path, opened: _Opened, geometry: dict[str, Any], digest: FileDigest
) -> Film:
    if opened.deflated:
        opened = _inflate_pixels(path, opened, keep=True)
        _check_inflated(path, opened, geometry)
    header = _dicom_header(path, opened, geometry)
    stored = _read_native(path, opened, geometry)
    if stored is None:
        stored = _decode(path, opened, geometry)
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
        digest=digest,
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


def _declared_image_size(path: Path, kind: str, budget: int) -> None:
    """Refuse a PNG/JPEG/TIFF whose header declares more pixels than the budget allows.

    OpenCV allocates what the header declares: a 1.75 MB PNG declaring
    30000 x 30000 pixels would take gigabytes before failing or succeeding.
    """
    with path.open("rb") as handle:
        head = handle.read(1 << 20)

        def read(offset: int, size: int) -> bytes:
            handle.seek(offset)
            return handle.read(min(size, 1 << 20))

        try:
            declared = image_file_size(head, kind, read)
        except CodestreamError as exc:
            raise InputFileError(path, str(exc)) from None
    if declared.rows < 1 or declared.columns < 1:
        raise InputFileError(path, f"{kind.upper()} header declares an empty image")
    bytes_per_sample = max(1, math.ceil(declared.bits / 8))
    check_budget(
        path, declared.rows, declared.columns, declared.components * bytes_per_sample, budget
    )


def _load_image(path: Path, kind: str, budget: int) -> Film:
    import cv2

    name = kind.upper()
    digest = FileDigest(path)  # the file's identity before anything is read
    _declared_image_size(path, kind, budget)
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
    with _opencv_silent(), silenced_stderr():
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
        digest=digest,
        source_format=kind,
    )


def load_film(path: str | os.PathLike[str], *, memory_budget_mb: float | None = None) -> Film:
    """Load a lateral film: DICOM (any transfer syntax with a decoder) or PNG/JPEG/TIFF.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  DICOM files are recognised by their ``DICM`` preamble (a
        data set without preamble is read too); PNG, JPEG and TIFF by their
        signature, whatever the file name.  Only regular files are opened.
    memory_budget_mb : float, optional
        Refuse a film whose decoding would need more memory (MB), judged from
        the sizes its headers declare before anything is allocated; default:
        ``LUMBAR_INSTABILITY_MEMORY_BUDGET_MB`` or 2048.

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
    budget = memory_budget_bytes(memory_budget_mb)
    kind = _sniff(path)
    if kind in ("dicom", "dicom-raw"):
        with _quiet():
            return _load_dicom(path, kind, budget)
    return _load_image(path, kind, budget)
