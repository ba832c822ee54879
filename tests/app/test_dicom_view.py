"""View recognition: spellings in several languages, word boundaries, codes, conflicts."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from app.dicom_io import View, load_film, recognise_view
from tests.app.dicom_factory import code_item, make_dataset, view_code, write

SPELLINGS = {
    # flexion
    "LAT FLEX": View.FLEXION, "L-SPINE LAT FLEXION": View.FLEXION, "LSP_FLX": View.FLEXION,
    "lateral in flexion": View.FLEXION, "LAT FLEXED": View.FLEXION, "FLEX1": View.FLEXION,
    "LWS seitlich Flexion": View.FLEXION, "LWS Inklination": View.FLEXION,
    "LWS in Beugung": View.FLEXION, "LWS Anteflexion": View.FLEXION,
    "Flexionsaufnahme LWS": View.FLEXION, "Rachis lombaire profil flexion": View.FLEXION,
    "Columna lumbar lateral flexión": View.FLEXION, "Rachide lombare flessione": View.FLEXION,
    "LWK lateraal flexie": View.FLEXION, "ante-flexion": View.FLEXION, "forward bending": View.FLEXION,
    "LAT HYPERFLEXION": View.FLEXION,
    # extension
    "LAT EXT": View.EXTENSION, "L-SPINE EXTENSION": View.EXTENSION, "lsp_ext": View.EXTENSION,
    "LWS Reklination": View.EXTENSION, "LWS Streckung": View.EXTENSION,
    "LWS Retroflexion": View.EXTENSION, "LWS retro-flexion": View.EXTENSION,
    "LWS Rückbeugung": View.EXTENSION, "Rachis lombaire profil extension": View.EXTENSION,
    "Columna lumbar lateral extensión": View.EXTENSION, "Hyperextension": View.EXTENSION,
    "Rachide lombare estensione": View.EXTENSION, "LWK extensie": View.EXTENSION, "backward bending": View.EXTENSION,
    # neutral
    "LAT NEUTRAL": View.NEUTRAL, "LWS Neutralstellung": View.NEUTRAL, "perfil neutro": View.NEUTRAL,
    "profil neutre": View.NEUTRAL,
    # nothing, or something else
    "TEXT": View.UNKNOWN, "NEXT PATIENT": View.UNKNOWN, "EXTERNAL": View.UNKNOWN,
    "LOWER EXT": View.UNKNOWN, "ext study": View.UNKNOWN, "FLEXIBLE": View.UNKNOWN,
    "REFLEX": View.UNKNOWN, "Lateralflexion": View.UNKNOWN, "L-SPINE 2 VIEWS": View.UNKNOWN,
    "LWS inkl. Funktion": View.UNKNOWN, "": View.UNKNOWN,
    # both in one text decides nothing
    "FLEX/EXT": View.UNKNOWN, "Flexion und Extension": View.UNKNOWN,
}  # fmt: skip


@pytest.mark.parametrize("text", list(SPELLINGS))
def test_spellings(text):
    view, evidence = recognise_view(text)
    assert view is SPELLINGS[text], evidence


def test_evidence_names_the_source_and_text():
    assert recognise_view("LAT FLEX") == (View.FLEXION, "text 'LAT FLEX' -> flexion")
    view, evidence = recognise_view("FLEX/EXT")
    assert view is View.UNKNOWN
    assert evidence == "text 'FLEX/EXT' names both extension and flexion"


def _ds(**attributes) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_view_modifier_codes():
    flexion = code_item("9964006", "SCT", "Flexion")
    assert recognise_view(_ds(ViewCodeSequence=view_code([flexion]))) == (
        View.FLEXION,
        "ViewModifierCodeSequence (SCT 9964006) 'Flexion' -> flexion",
    )
    legacy = code_item("F-10100", "SRT", "something translated")  # the code decides, not the text
    assert recognise_view(_ds(ViewCodeSequence=view_code([legacy])))[0] is View.EXTENSION
    neutral = code_item("109136", "DCM", "Neutral musculoskeletal position")
    assert recognise_view(_ds(ViewCodeSequence=view_code([neutral])))[0] is View.NEUTRAL
    private = code_item("X1", "99LOCAL", "Reklination")  # unknown code: its meaning is read
    assert recognise_view(_ds(ViewCodeSequence=view_code([private])))[0] is View.EXTENSION


def test_conflicting_attributes_give_unknown_with_the_conflict():
    view, evidence = recognise_view(_ds(SeriesDescription="LAT FLEX", ImageComments="extension"))
    assert view is View.UNKNOWN
    assert evidence == (
        "conflicting evidence: SeriesDescription 'LAT FLEX' says flexion; "
        "ImageComments 'extension' says extension"
    )


def test_agreeing_attributes_are_all_cited():
    view, evidence = recognise_view(
        _ds(SeriesDescription="LAT FLEX", ProtocolName="LWS Inklination")
    )
    assert view is View.FLEXION
    assert evidence == (
        "SeriesDescription 'LAT FLEX' -> flexion; ProtocolName 'LWS Inklination' -> flexion"
    )


def test_study_level_text_only_when_the_film_says_nothing():
    ds = _ds(StudyDescription="LWS Funktion Flexion/Extension", SeriesDescription="LAT EXT")
    assert recognise_view(ds) == (View.EXTENSION, "SeriesDescription 'LAT EXT' -> extension")
    ds = _ds(StudyDescription="LWS Funktion Flexion/Extension", SeriesDescription="LWS seitl.")
    view, evidence = recognise_view(ds)
    assert view is View.UNKNOWN
    assert "StudyDescription 'LWS Funktion Flexion/Extension' names both" in evidence
    ds = _ds(PerformedProcedureStepDescription="LWS Reklination", SeriesDescription="LWS seitl.")
    assert recognise_view(ds)[0] is View.EXTENSION


def test_a_text_naming_both_does_not_block_a_decisive_one():
    ds = _ds(SeriesDescription="FLEX/EXT", AcquisitionDeviceProcessingDescription="L-SPINE FLEXION")
    assert recognise_view(ds) == (
        View.FLEXION,
        "AcquisitionDeviceProcessingDescription 'L-SPINE FLEXION' -> flexion",
    )


def test_file_name_is_the_last_resort(tmp_path):
    path = write(make_dataset(SeriesDescription="LWS seitl."), tmp_path / "patient_flex.dcm")
    film = load_film(path)
    assert film.view is View.FLEXION
    assert film.view_evidence == "file name 'patient_flex.dcm' -> flexion"
    path = write(make_dataset(SeriesDescription="LAT EXT"), tmp_path / "flex.dcm")
    assert load_film(path).view is View.EXTENSION  # the header wins over the file name


def test_no_evidence():
    view, evidence = recognise_view(_ds(SeriesDescription="L-SPINE LAT"))
    assert view is View.UNKNOWN
    assert evidence == "no flexion/extension/neutral term in SeriesDescription"
    assert recognise_view(Dataset()) == (View.UNKNOWN, "no view attribute or text to search")
