"""A pydicom decoding plugin for lossless JPEG with libjpeg-turbo.

pydicom 3 decodes lossless JPEG (Process 14, 1.2.840.10008.1.2.4.57 and
.70) with GDCM first and pylibjpeg-libjpeg second.  GDCM may abort the
process on a damaged codestream (it only runs in a forked child here), and
libjpeg is 1.5x slower than GDCM.  libjpeg-turbo 3, which ``imagecodecs``
wraps, decodes lossless JPEG of 2-16 bits 2-3x faster than either and reports
a damaged codestream as an exception (``benchmarks/bench_load.py --codecs``;
figures in the README).

The module follows pydicom's plugin interface (``is_available``,
``DECODER_DEPENDENCIES``, a frame function); :func:`register` adds it to
pydicom's decoders under the label ``"imagecodecs"``, after pydicom's own
plugins, so pydicom's default order is unchanged and only
:data:`app.dicom_io.DECODING_PLUGINS` asks for it by name.  Without
``imagecodecs`` installed, the plugin is simply unavailable and the next one
in the list decodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.pixels.decoders.base import DecodeRunner

__all__ = ["DECODER_DEPENDENCIES", "LABEL", "is_available", "register"]

LABEL = "imagecodecs"

#: Transfer syntaxes this plugin decodes (monochrome films only).
SYNTAXES = (uid.JPEGLossless, uid.JPEGLosslessSV1)

DECODER_DEPENDENCIES = {syntax: ("imagecodecs>=2024.1.1",) for syntax in SYNTAXES}


def _jpeg_decode() -> Callable[[bytes], np.ndarray] | None:
    """imagecodecs' libjpeg-turbo decoder, or None when imagecodecs is not installed."""
    try:
        from imagecodecs import jpeg8_decode
    except ImportError:
        return None
    return jpeg8_decode


def is_available(syntax: str) -> bool:
    """Whether ``imagecodecs`` with libjpeg-turbo is installed and ``syntax`` is one of ours.

    Parameters
    ----------
    syntax : str
        Transfer syntax UID.

    Returns
    -------
    bool
    """
    return syntax in SYNTAXES and _jpeg_decode() is not None


def _decode_frame(src: bytes, runner: DecodeRunner) -> np.ndarray:
    """One frame's codestream -> its pixels, C-contiguous, in the codestream's precision.

    Parameters
    ----------
    src : bytes
        The frame's JPEG codestream.
    runner : pydicom.pixels.decoders.base.DecodeRunner
        pydicom's decoding state; ``bits_allocated`` is set to the decoded
        container (8 or 16 bits), as pydicom's own plugins do.

    Returns
    -------
    numpy.ndarray, shape (rows, columns), uint8 or uint16
        Stored values (two's complement bit patterns for signed films:
        pydicom reinterprets them).

    Raises
    ------
    ValueError
        Colour films (pydicom's other plugins handle their colour spaces), or
        a decoded size other than the header's.
    """
    if runner.samples_per_pixel != 1:
        raise ValueError("the imagecodecs plugin decodes monochrome films only")
    decode = _jpeg_decode()
    if decode is None:  # pragma: no cover - is_available said otherwise
        raise ValueError("imagecodecs is not installed")
    frame = decode(src)
    if frame.shape != (runner.rows, runner.columns):
        raise ValueError(
            f"the codestream decoded to {frame.shape}, expected {runner.rows} x {runner.columns}"
        )
    runner.set_option("bits_allocated", 8 * frame.dtype.itemsize)
    return np.ascontiguousarray(frame)


def register() -> None:
    """Add the plugin to pydicom's decoders of :data:`SYNTAXES` (once; idempotent)."""
    from pydicom.pixels import get_decoder

    for syntax in SYNTAXES:
        with contextlib.suppress(ValueError):  # ValueError: registered already
            get_decoder(syntax).add_plugin(LABEL, (__name__, "_decode_frame"))
