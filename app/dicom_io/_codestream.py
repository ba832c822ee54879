"""Checks on compressed pixel data and image files before any decoder sees them.

A decoder trusts the dimensions written in its codestream and allocates for
them; a codestream cut short is filled with garbage by some decoders without a
word (libjpeg on JPEG-LS and lossless JPEG).  This module reads the few header
bytes that declare an image's size (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ,
RLE header, PNG IHDR, TIFF IFD) and checks that a codestream ends with its end
marker, so that a file is refused with a reason before a decoder can abort the
process, exhaust memory or return a damaged film.

Pure byte parsing: no decoder, no pydicom.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CodestreamError",
    "DeclaredImage",
    "check_rle",
    "codestream_image",
    "image_file_size",
]

# JPEG start-of-frame markers (ITU-T T.81 B.1.1.3) and JPEG-LS SOF55 (T.87).
_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
)
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_HEADER_SCAN_LIMIT = 1 << 20  # header segments never need more than 1 MiB
# The end marker is looked for among the last bytes: DICOM pads an odd item with
# a NUL, and some encoders leave a few bytes after it.
_TAIL = 256


class CodestreamError(ValueError):
    """A codestream or image header that cannot be trusted (message: one line, no data)."""


@dataclass(frozen=True, slots=True)
class DeclaredImage:
    """What an image header declares, before decoding.

    Attributes
    ----------
    rows, columns : int
        Image size in pixels.
    components : int
        Samples per pixel.
    bits : int
        Bits per sample (precision).
    """

    rows: int
    columns: int
    components: int
    bits: int




def _jpeg_sof(data: bytes | memoryview) -> DeclaredImage:
    """Walk JPEG / JPEG-LS marker segments up to the first SOF (T.81 B.2, T.87 C.2)."""
    if bytes(data[:2]) != b"\xff\xd8":
        raise CodestreamError("JPEG codestream without its start-of-image marker")
    position, limit = 2, min(len(data), _HEADER_SCAN_LIMIT)
    while position + 4 <= limit:
        if data[position] != 0xFF:
            raise CodestreamError("JPEG codestream with a damaged header")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", bytes(data[position + 2 : position + 4]))
        if length < 2:
            raise CodestreamError("JPEG codestream with a damaged header")
        if marker in _SOF_MARKERS:
            segment = bytes(data[position + 4 : position + 2 + length])
            if len(segment) < 6:
                raise CodestreamError("JPEG codestream with a truncated frame header")
            bits, rows, columns, components = struct.unpack(">BHHB", segment[:6])
            return DeclaredImage(rows, columns, components, bits)
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            break
        position += 2 + length
    raise CodestreamError("JPEG codestream without a frame header")


def _j2k_siz(data: bytes | memoryview) -> DeclaredImage:
    """The SIZ marker segment of a JPEG 2000 codestream (T.800 A.5.1), also inside a JP2 file."""
    start = 0
    if bytes(data[:12]) == _JP2_SIGNATURE:  # JP2 boxes: find the contiguous codestream box
        start = bytes(data[: _HEADER_SCAN_LIMIT]).find(b"jp2c")
        if start < 0:
            raise CodestreamError("JPEG 2000 file without a codestream box")
        start += 4
    head = bytes(data[start : start + 64])
    if head[:4] != b"\xff\x4f\xff\x51" or len(head) < 42:
        raise CodestreamError("JPEG 2000 codestream without its SIZ header")
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", head[8:24])
    (components,) = struct.unpack(">H", head[40:42])
    if xsiz <= xosiz or ysiz <= yosiz or components < 1:
        raise CodestreamError("JPEG 2000 codestream declares an empty image")
    bits = (head[42] & 0x7F) + 1 if len(head) > 42 else 0
    return DeclaredImage(ysiz - yosiz, xsiz - xosiz, components, bits)


def codestream_image(data: bytes | memoryview, family: str) -> DeclaredImage:
    """Check a single-frame codestream's structure; return the size its header declares.

    Parameters
    ----------
    data : bytes
        The frame's codestream (all fragments of the frame, in order).
    family : {'jpeg', 'jpeg-ls', 'j2k'}
        JPEG (T.81, any process), JPEG-LS (T.87) or JPEG 2000 / HTJ2K (T.800, T.814).

    Returns
    -------
    DeclaredImage

    Raises
    ------
    CodestreamError
        No start marker or frame/SIZ header, or the codestream does not end with
        its end marker (EOI / EOC, ``FF D9``, among its last 256 bytes): it was cut
        short.  Inside
        entropy-coded data ``FF`` is never followed by ``D9`` (byte stuffing in
        JPEG and JPEG-LS, the codeword limit of JPEG 2000), so a cut codestream
        cannot end with it by chance.
    """
    declared = _j2k_siz(data) if family == "j2k" else _jpeg_sof(data)
    if bytes(data[-_TAIL:]).rfind(b"\xff\xd9") < 0:
        name = {"j2k": "JPEG 2000", "jpeg-ls": "JPEG-LS"}.get(family, "JPEG")
        marker = "end-of-codestream" if family == "j2k" else "end-of-image"
        raise CodestreamError(f"truncated: {name} codestream without its {marker} marker")
    return declared


def check_rle(data: bytes | memoryview, rows: int, columns: int, bits_allocated: int) -> None:
    """Check an RLE Lossless frame's header (PS3.5 G.5) against the image it should hold.

    Raises
    ------
    CodestreamError
        Not 64 header bytes, a segment count other than bits allocated / 8,
        segment offsets out of order or beyond the frame.
    """
    if len(data) < 64:
        raise CodestreamError("truncated: RLE frame shorter than its 64-byte header")
    header = struct.unpack("<16L", bytes(data[:64]))
    segments = header[0]
    expected = max(1, bits_allocated // 8)
    if segments != expected:
        raise CodestreamError(
            f"RLE frame with {segments} segments, expected {expected} for "
            f"{bits_allocated}-bit pixels"
        )
    offsets = [*header[1 : 1 + segments], len(data)]
    if offsets[0] != 64 or any(b <= a for a, b in itertools.pairwise(offsets)):
        raise CodestreamError("truncated: RLE segment offsets beyond the end of the frame")
    # Each byte segment decodes to rows x columns bytes; a PackBits run of n
    # source bytes yields at most 128 x n bytes, so a segment far too short is cut.
    for start, end in itertools.pairwise(offsets):
        if (end - start) * 128 < rows * columns:
            raise CodestreamError("truncated: an RLE segment is too short for the image")


# ----------------------------------------------------------------------------- image files


def _png_size(head: bytes) -> DeclaredImage:
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise CodestreamError("PNG file without its IHDR header")
    columns, rows, bits, colour = struct.unpack(">IIBB", head[16:26])
    components = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    return DeclaredImage(rows, columns, components, bits)


def _tiff_size(head: bytes, read: Callable[[int, int], bytes]) -> DeclaredImage:
    """Width, length, samples and bits of the first IFD (TIFF 6.0, BigTIFF)."""
    order = "<" if head[:2] == b"II" else ">"
    try:
        (magic,) = struct.unpack(f"{order}H", head[2:4])
        if magic == 42:
            (offset,) = struct.unpack(f"{order}L", head[4:8])
            (count,) = struct.unpack(f"{order}H", read(offset, 2))
            entry_size, first, layout = 12, offset + 2, f"{order}HHL4s"
        else:
            (offset,) = struct.unpack(f"{order}Q", head[8:16])
            (count,) = struct.unpack(f"{order}Q", read(offset, 8))
            entry_size, first, layout = 20, offset + 8, f"{order}HHQ8s"
        count = min(count, 4096)
        table = read(first, count * entry_size)
        values: dict[int, int] = {}
        for index in range(count):
            at = index * entry_size
            tag, kind, _, raw = struct.unpack(layout, table[at : at + entry_size])
            if tag in (256, 257, 258, 277):
                code = {3: "H", 4: "L", 16: "Q"}.get(kind)
                if code is None:
                    continue
                values[tag] = struct.unpack(f"{order}{code}", raw[: struct.calcsize(code)])[0]
    except struct.error:
        raise CodestreamError("TIFF file with a damaged header") from None
    if 256 not in values or 257 not in values:
        raise CodestreamError("TIFF file without ImageWidth/ImageLength")
    return DeclaredImage(values[257], values[256], values.get(277, 1), values.get(258, 8))


def image_file_size(
    head: bytes, kind: str, read: Callable[[int, int], bytes] | None = None
) -> DeclaredImage:
    """The size a PNG, JPEG or TIFF file declares in its header.

    Parameters
    ----------
    head : bytes
        The file's first bytes (1 MiB is plenty for PNG and JPEG headers).
    kind : {'png', 'jpeg', 'tiff'}
    read : callable, optional
        ``read(offset, size) -> bytes`` of the file, for a TIFF whose first
        IFD lies beyond ``head``; default: slices of ``head``.

    Raises
    ------
    CodestreamError
        The header is missing or damaged.
    """
    if kind == "png":
        return _png_size(head)
    if kind == "jpeg":
        return _jpeg_sof(head)
    return _tiff_size(head, read or (lambda offset, size: head[offset : offset + size]))
