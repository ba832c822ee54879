"""Small DICOM files built by the tests: every calibration branch, MONOCHROME1,
VOI LUTs, window tags, Modality LUT rescale, compressed encodings and broken files.

Nothing here comes from a real patient: the pixel values are ramps and the
names are invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

DX_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
FAKE_PATIENT_NAME = "Testperson^Erika^Mustername"


def ramp(rows: int = 24, columns: int = 32, *, bits: int = 12, signed: bool = False) -> np.ndarray:
    """A deterministic ramp covering most of the stored range, shape (rows, columns)."""
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = -(1 << (bits - 1)) if signed else 0
    values = np.linspace(bottom, top, rows * columns).round().astype(np.int64)
    values = values.reshape(rows, columns)
    dtype = np.int16 if signed else np.uint16
    if bits <= 8:
        dtype = np.int8 if signed else np.uint8
    return values.astype(dtype)


def make_dataset(
    pixels: np.ndarray | None = None,
    *,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    **attributes: Any,
) -> Dataset:
    """A DX image with identity attributes and the given pixels (default :func:`ramp`).

    Extra keyword arguments are set as DICOM attributes by keyword (a value of
    None leaves the attribute out).
    """
    if pixels is None:
        pixels = ramp(bits=bits_stored)
    pixels = np.ascontiguousarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.PatientName = FAKE_PATIENT_NAME
    ds.PatientID = "PHANTOM-0001"
    ds.PatientBirthDate = "19600229"
    ds.AccessionNumber = "ACC42"
    ds.StudyDate = "20260102"
    ds.Manufacturer = "Test factory"
    ds.InstanceNumber = 1
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 1 if pixels.ndim == 2 else pixels.shape[2]
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.PixelData = pixels.tobytes()
    for keyword, value in attributes.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: str | Path, transfer_syntax: str | None = None) -> Path:
    """Save ``ds`` as a DICOM file, compressing it with pydicom's encoders if asked."""
    path = Path(path)
    if transfer_syntax is not None and UID(transfer_syntax) != ds.file_meta.TransferSyntaxUID:
        ds.compress(UID(transfer_syntax))
    ds.save_as(path, enforce_file_format=True)
    return path


def gdcm_transcode(source: str | Path, target: str | Path, transfer_syntax: str) -> Path:
    """Re-encode a DICOM file with GDCM (which has JPEG encoders that pydicom lacks)."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    if not reader.Read():
        raise RuntimeError(f"GDCM cannot read {source}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(transfer_syntax)))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"GDCM cannot encode {transfer_syntax}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(target))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"GDCM cannot write {target}")
    return Path(target)


def voi_lut_item(first_mapped: int, bits: int, data: list[int], explanation: str = "") -> Dataset:
    """One VOI LUT Sequence item (LUTDescriptor, LUTData as US)."""
    item = Dataset()
    item.add_new(0x00283002, "US", [len(data) % 65536, first_mapped, bits])  # LUTDescriptor
    item.add_new(0x00283006, "US", list(data))  # LUTData
    if explanation:
        item.LUTExplanation = explanation
    return item


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def view_code(modifiers: list[Dataset] | None = None) -> Sequence:
    """ViewCodeSequence with a lateral view (a private placeholder code) and modifiers."""
    item = code_item("LAT-TEST", "99TEST", "lateral")
    if modifiers:
        item.ViewModifierCodeSequence = Sequence(modifiers)
    return Sequence([item])


def patch_text(path: str | Path, old: str, new: str) -> None:
    """Replace an attribute's text in a written file by another of the same length.

    Writes garbled values (``"abc\\1.0"``) that pydicom refuses to encode.
    """
    path = Path(path)
    data = path.read_bytes()
    old_bytes, new_bytes = old.encode("ascii"), new.encode("ascii")
    if len(old_bytes) != len(new_bytes):
        raise ValueError("new: must have the length of old")
    if data.count(old_bytes) != 1:
        raise ValueError(f"old: {old!r} occurs {data.count(old_bytes)} times")
    path.write_bytes(data.replace(old_bytes, new_bytes))


def truncate(path: str | Path, keep: int) -> None:
    """Cut a file to its first ``keep`` bytes."""
    path = Path(path)
    path.write_bytes(path.read_bytes()[:keep])


def pixel_value_offset(path: str | Path) -> int:
    """Byte offset of the (native) Pixel Data value in an Explicit VR LE file."""
    data = Path(path).read_bytes()
    marker = b"\xe0\x7f\x10\x00OW\x00\x00"
    index = data.rfind(marker)
    if index < 0:
        marker = b"\xe0\x7f\x10\x00OB\x00\x00"
        index = data.rfind(marker)
    if index < 0:
        raise ValueError("no explicit VR pixel data element")
    return index + len(marker) + 4
