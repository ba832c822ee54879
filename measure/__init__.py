"""Pure computation for lumbar instability: landmark geometry, motion, criteria,
uncertainty, tracking and detection, and reader-agreement statistics.

Imports numpy, scipy, opencv and scikit-image only: no Qt, no DICOM, no file I/O.
"""

from measure._agreement import (
    BlandAltman,
    IntraclassCorrelation,
    bland_altman,
    cohen_kappa,
    fleiss_kappa,
    intraclass_correlation,
)
from measure._auto_common import Cancelled, Checkpoint, LandmarkFailure, endplate_depth_px
from measure._calibration import Calibration, CalibrationSource
from measure._criteria import CRITERIA_PRESETS, Criteria, get_criteria
from measure._detect import REVIEW_THRESHOLD, DetectionResult, detect_vertebrae
from measure._disc import disc_heights
from measure._levels import (
    CORNERS,
    DEFAULT_LEVELS,
    level_sort_key,
    segment_labels,
    sort_levels,
    usable_corners,
)
from measure._motion import Z95, SegmentalMotion, segmental_motion
from measure._proportion import wilson_interval
from measure._refine import RefinementResult, refine_corners
from measure._seeded import SeededResult, corners_from_seeds
from measure._tracking import TrackingResult, track_bodies
from measure._uncertainty import (
    DEFAULT_LANDMARK_SD_MM,
    ERROR_MODEL,
    TRACKING_SD_MODEL,
    ErrorModel,
    LandmarkUncertainty,
    PlacementMethod,
    TrackingSDModel,
    placement_uncertainty,
    tracking_sd,
)
from measure._verdict import (
    VERDICT_KINDS,
    Verdict,
    quantity_verdicts,
    quantity_verdicts_of_record,
    segment_verdict,
    verdict_of_record,
)

__all__ = [
    "CORNERS",
    "CRITERIA_PRESETS",
    "DEFAULT_LANDMARK_SD_MM",
    "DEFAULT_LEVELS",
    "ERROR_MODEL",
    "REVIEW_THRESHOLD",
    "TRACKING_SD_MODEL",
    "VERDICT_KINDS",
    "Z95",
    "BlandAltman",
    "Calibration",
    "CalibrationSource",
    "Cancelled",
    "Checkpoint",
    "Criteria",
    "DetectionResult",
    "ErrorModel",
    "IntraclassCorrelation",
    "LandmarkFailure",
    "LandmarkUncertainty",
    "PlacementMethod",
    "RefinementResult",
    "SeededResult",
    "SegmentalMotion",
    "TrackingResult",
    "TrackingSDModel",
    "Verdict",
    "bland_altman",
    "cohen_kappa",
    "corners_from_seeds",
    "detect_vertebrae",
    "disc_heights",
    "endplate_depth_px",
    "fleiss_kappa",
    "get_criteria",
    "intraclass_correlation",
    "level_sort_key",
    "placement_uncertainty",
    "quantity_verdicts",
    "quantity_verdicts_of_record",
    "refine_corners",
    "segment_labels",
    "segment_verdict",
    "segmental_motion",
    "sort_levels",
    "track_bodies",
    "tracking_sd",
    "usable_corners",
    "verdict_of_record",
    "wilson_interval",
]
