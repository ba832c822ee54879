"""DX "For Presentation" DICOM files of phantom films.

Digital X-Ray Image Storage - For Presentation (1.2.840.10008.5.1.4.1.1.1.1)
with the Patient, General Study, General Series, DX Series, General Equipment,
General Image, Image Pixel, DX Anatomy Imaged, DX Image, DX Detector, DX
Positioning, VOI LUT, Acquisition Context and SOP Common modules.  UIDs,
dates and times are derived from the seed and options, so the same study is
written byte for byte identically every time.
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import asdict

import numpy as np
from pydicom import uid as _uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from app.phantom._study import PhantomFilm, PhantomStudy

__all__ = ["UID_PREFIX", "dataset_for_film", "encode_film", "header_spacing"]

# pydicom's registered root: UIDs are "<root>.<hash of the seed and options>"
UID_PREFIX = _uid.PYDICOM_ROOT_UID
_DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
_SOURCE_TO_DETECTOR_MM = 1150.0
_TRANSFER_SYNTAX = {
    "none": _uid.ExplicitVRLittleEndian,
    "rle": _uid.RLELossless,
    "jpeg-ls": _uid.JPEGLSLossless,
    "jpeg2000": _uid.JPEG2000Lossless,
    "jpeg-lossless": _uid.JPEGLosslessSV1,
}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _uids(study: PhantomStudy) -> dict[str, str]:
    opts = asdict(study.options)
    if opts.get("realism") is None and not opts.get("realistic"):  # the clean phantom's UIDs as before
        opts.pop("realism", None)
        opts.pop("realistic", None)
    key = "lumbar-instability-phantom|" + "|".join(f"{k}={opts[k]}" for k in sorted(opts))
    names = ("study", "series-flexion", "series-extension", "sop-flexion", "sop-extension")
    return {n: _uid.generate_uid(prefix=UID_PREFIX, entropy_srcs=[key, n]) for n in names}


def header_spacing(calibration: str, film: PhantomFilm) -> dict[str, object]:
    """The spacing attributes a film carries for a calibration variant.

    Returns a mapping of DICOM keyword to value (missing keywords are absent).
    See ``docs/measurement.md`` §5 for what each variant should be read as.
    """
    det = f"{film.detector_spacing_mm:.12g}"
    true = f"{film.pixel_spacing_mm[0]:.12g}"
    mag = f"{film.magnification:.12g}"
    if calibration == "calibrated":
        return {
            "ImagerPixelSpacing": [det, det],
            "PixelSpacing": [true, true],
            "PixelSpacingCalibrationType": "GEOMETRY",
            "PixelSpacingCalibrationDescription": "phantom geometry: detector spacing / magnification",
            "EstimatedRadiographicMagnificationFactor": mag,
        }
    if calibration == "magnification-corrected":
        return {"ImagerPixelSpacing": [det, det], "EstimatedRadiographicMagnificationFactor": mag}
    if calibration == "detector":
        return {"ImagerPixelSpacing": [det, det]}
    if calibration == "detector-differs":
        return {"ImagerPixelSpacing": [det, det], "PixelSpacing": [true, true]}
    if calibration == "unit-spacing":  # old CR exports: ImagerPixelSpacing 1\\1, not the patient's
        return {"ImagerPixelSpacing": ["1", "1"]}
    if calibration == "garbage":
        return {"ImagerPixelSpacing": ["0.000", "0.000"], "PixelSpacing": ["0.000", "0.000"]}
    return {}  # uncalibrated: no spacing at all


def dataset_for_film(study: PhantomStudy, film: PhantomFilm) -> Dataset:
    """The DICOM dataset (uncompressed pixel data) of one film."""
    opts = study.options
    uids = _uids(study)
    seed = int(opts.seed)
    day = _dt.date(2024, 1, 1) + _dt.timedelta(days=seed % 366)
    acq_time = "101530" if film.view == "flexion" else "101645"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _DX_PRESENTATION
    meta.MediaStorageSOPInstanceUID = uids[f"sop-{film.view}"]
    meta.TransferSyntaxUID = _uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = _uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "LUMBAR_PHANTOM"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = _DX_PRESENTATION
    ds.SOPInstanceUID = uids[f"sop-{film.view}"]
    # Patient
    ds.PatientName = f"PHANTOM^SEED{seed}"
    ds.PatientID = f"PHANTOM-{seed}"
    ds.PatientBirthDate = f"{1950 + seed % 40}0615"
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "NO"
    ds.PatientComments = "Synthetic phantom (lumbar-instability phantom); no real patient."
    # General Study
    ds.StudyInstanceUID = uids["study"]
    ds.StudyDate = day.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.ReferringPhysicianName = ""
    ds.StudyID = f"PH{seed % 100000:05d}"
    ds.AccessionNumber = f"PH{seed % 10**10:010d}"
    ds.StudyDescription = "L-SPINE FLEXION/EXTENSION"
    # General Series + DX Series
    ds.Modality = "DX"
    ds.SeriesInstanceUID = uids[f"series-{film.view}"]
    ds.SeriesNumber = 1 if film.view == "flexion" else 2
    ds.SeriesDescription = f"L-SPINE LAT {film.view.upper()}"
    ds.ProtocolName = f"L-SPINE LAT {film.view.upper()}"
    ds.BodyPartExamined = "LSPINE"
    ds.PresentationIntentType = "FOR PRESENTATION"
    # General Equipment
    ds.Manufacturer = "lumbar-instability phantom"
    ds.InstitutionName = "Synthetic"
    ds.StationName = "PHANTOM"
    ds.ManufacturerModelName = "phantom"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = "lumbar-instability 0.1.0"
    # General Image / Acquisition
    ds.InstanceNumber = 1
    facing_left = opts.facing == "left"
    ds.PatientOrientation = ["P", "F"] if facing_left else ["A", "F"]
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = acq_time
    ds.AcquisitionDate = ds.StudyDate
    ds.AcquisitionTime = acq_time
    ds.AcquisitionDateTime = ds.StudyDate + acq_time
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.ImageComments = f"Lateral lumbar spine in {film.view}"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.QualityControlImage = "NO"
    # Image Pixel + DX Image
    rows, cols = film.pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = film.photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = film.bits_stored
    ds.HighBit = film.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LOG"
    # +1: lower values = less X-ray intensity (bone); bone is dark in MONOCHROME1 here
    ds.PixelIntensityRelationshipSign = 1 if film.photometric == "MONOCHROME1" else -1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if film.photometric == "MONOCHROME1" else "IDENTITY"
    top = 2**film.bits_stored - 1
    ds.WindowCenter = f"{(top + 1) / 2:.1f}"
    ds.WindowWidth = f"{top + 1:.0f}"
    ds.WindowCenterWidthExplanation = "FULL RANGE"
    # DX Anatomy Imaged
    ds.ImageLaterality = "U"
    ds.AnatomicRegionSequence = Sequence([_code("122496007", "SCT", "Lumbar spine")])
    # DX Detector
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.DetectorID = "PHANTOM-DET"
    ds.DetectorActiveShape = "RECTANGLE"
    ds.DetectorActiveDimensions = [
        f"{rows * film.detector_spacing_mm:.6g}", f"{cols * film.detector_spacing_mm:.6g}"
    ]  # fmt: skip
    ds.DetectorElementSpacing = [f"{film.detector_spacing_mm:.6g}"] * 2
    for keyword, value in header_spacing(opts.calibration, film).items():
        setattr(ds, keyword, value)
    # DX Positioning
    ds.PositionerType = "NONE"
    ds.ViewPosition = "LL" if facing_left else "RL"
    view = (
        _code("399173006", "SCT", "left lateral")
        if facing_left
        else _code("399198007", "SCT", "right lateral")
    )
    view.ViewModifierCodeSequence = Sequence(
        [
            _code("9964006", "SCT", "Flexion")
            if film.view == "flexion"
            else _code("24154002", "SCT", "Extension")
        ]
    )
    ds.ViewCodeSequence = Sequence([view])
    ds.PatientOrientationCodeSequence = Sequence([_code("10904000", "SCT", "erect")])
    ds.DistanceSourceToDetector = f"{_SOURCE_TO_DETECTOR_MM:.1f}"
    ds.DistanceSourceToPatient = f"{_SOURCE_TO_DETECTOR_MM / film.magnification:.6g}"
    ds.KVP = "90"
    # Acquisition Context
    ds.AcquisitionContextSequence = Sequence([])
    ds.PixelData = np.ascontiguousarray(film.pixels, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def encode_film(study: PhantomStudy, film: PhantomFilm) -> bytes:
    """The bytes of the DICOM file (Part 10) of one film, compressed as the options say."""
    ds = dataset_for_film(study, film)
    compression = study.options.compression
    syntax = _TRANSFER_SYNTAX[compression]
    if compression == "jpeg-lossless":
        return _encode_with_gdcm(ds, syntax)
    if compression != "none":
        plugin = {"rle": "pylibjpeg", "jpeg-ls": "pyjpegls", "jpeg2000": "pylibjpeg"}[compression]
        ds.compress(syntax, film.pixels, encoding_plugin=plugin, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _encode_with_gdcm(ds: Dataset, syntax: str) -> bytes:
    """JPEG Lossless (process 14, selection value 1) through GDCM (pydicom has no encoder)."""
    import os
    import tempfile

    import gdcm

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.dcm"), os.path.join(tmp, "out.dcm")
        ds.save_as(src, enforce_file_format=True)
        reader = gdcm.ImageReader()
        reader.SetFileName(src)
        if not reader.Read():
            raise RuntimeError("GDCM could not read the uncompressed film")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError("GDCM could not encode JPEG Lossless")
        writer = gdcm.ImageWriter()
        writer.SetFileName(dst)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise RuntimeError("GDCM could not write the JPEG Lossless film")
        with open(dst, "rb") as handle:
            data = handle.read()
    # GDCM rewrites the file meta; put back our implementation identity for stable bytes
    from pydicom import dcmread

    out = dcmread(io.BytesIO(data))
    out.file_meta.ImplementationClassUID = _uid.PYDICOM_IMPLEMENTATION_UID
    out.file_meta.ImplementationVersionName = "LUMBAR_PHANTOM"
    for keyword in ("SourceApplicationEntityTitle",):
        if keyword in out.file_meta:
            delattr(out.file_meta, keyword)
    assert out.file_meta.TransferSyntaxUID == syntax
    buffer = io.BytesIO()
    out.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
