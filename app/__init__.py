"""Everything that is not Qt: DICOM I/O and calibration, the evented session model,
reports, batch processing and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lumbar-instability")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+source"
