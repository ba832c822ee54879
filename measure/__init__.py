"""Pure computation for lumbar instability: landmark geometry, motion, criteria,
uncertainty, tracking and detection.

Imports numpy, scipy, opencv and scikit-image only: no Qt, no DICOM, no file I/O.
"""

from measure._calibration import Calibration, CalibrationSource

__all__ = ["Calibration", "CalibrationSource"]
