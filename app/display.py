"""Display helpers for the viewer that must not run on its UI thread.

OpenCV releases the GIL while it resamples, so :func:`downscale_grey` can run
in a thread of the viewer while the UI thread keeps painting (Qt's own smooth
``QImage.scaled`` holds the GIL: 35-50 ms per film on the sample, more on a
full-size film).
"""

from __future__ import annotations

import numpy as np

__all__ = ["downscale_grey"]


def downscale_grey(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    """An 8-bit picture resampled to ``(height, width)`` by pixel-area averaging.

    Parameters
    ----------
    grey : ndarray of shape (rows, columns), uint8
        The displayed picture.
    width, height : int
        Target size in pixels (each at least 1).

    Returns
    -------
    ndarray of shape (height, width), uint8
        Each output pixel the mean of the input pixels it covers (no aliasing
        when shrinking, unlike nearest-neighbour sampling).
    """
    import cv2

    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"grey: expected a 2-D uint8 array, got {grey.dtype} of shape {grey.shape}")
    width, height = max(int(width), 1), max(int(height), 1)
    return cv2.resize(np.ascontiguousarray(grey), (width, height), interpolation=cv2.INTER_AREA)
