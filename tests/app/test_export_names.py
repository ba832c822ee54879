"""Default export file names (app.export_names): date, views, series; never who the patient is."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest

from app.export_names import EXPORT_FORMATS, export_file_names, export_stem, safe_file_part


def _film(**kw):
    base = dict(patient_name="Doe^Jane", patient_id="MRN778899", patient_birth_date=date(1961, 3, 14),
                study_date=None, acquisition_datetime=None, series_number=None, series_description=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_date_views_and_series_numbers():
    films = {"flexion": _film(study_date=date(2024, 5, 2), series_number=3),
             "extension": _film(study_date=date(2024, 5, 2), series_number=4)}
    assert export_stem(films) == "2024-05-02_flexion-extension_S3-4"
    assert export_stem(films, anonymised=True) == "2024-05-02_flexion-extension_S3-4"


def test_acquisition_date_wins_over_study_date_and_two_dates_are_both_named():
    films = {"flexion": _film(study_date=date(2024, 5, 1), acquisition_datetime=datetime(2024, 5, 2, 9, 30),
                              series_number=7),
             "extension": _film(study_date=date(2024, 5, 1), acquisition_datetime=datetime(2024, 5, 9, 8, 0),
                                series_number=7)}
    # one shared series number is written once
    assert export_stem(films) == "2024-05-02+2024-05-09_flexion-extension_S7"


def test_one_film_without_date_or_series():
    assert export_stem({"extension": _film()}) == "undated_extension"
    assert export_stem({"flexion": None}) == "undated_flexion"  # a PNG film has no DICOM identity


def test_series_description_only_when_not_anonymised_and_never_with_a_name():
    films = {"flexion": _film(study_date=date(2024, 5, 2), series_description="L-spine LAT flexión"),
             "extension": _film(study_date=date(2024, 5, 2), series_description="L-spine LAT extension")}
    assert export_stem(films) == "2024-05-02_flexion-extension_L-spine-LAT-flexion_L-spine-LAT-extension"
    assert export_stem(films, anonymised=True) == "2024-05-02_flexion-extension"
    # a description that holds the patient's name, ID or birth date is left out, anonymised or not
    leaky = {"flexion": _film(study_date=date(2024, 5, 2), series_description="DOE JANE lat"),
             "extension": _film(study_date=date(2024, 5, 2), series_description="lat MRN778899"),
             }
    assert export_stem(leaky) == "2024-05-02_flexion-extension"
    born = {"flexion": _film(series_description="lat 1961-03-14")}
    assert export_stem(born) == "undated_flexion"


@pytest.mark.parametrize("anonymised", [False, True])
def test_no_identifier_in_any_name(anonymised):
    films = {"flexion": _film(study_date=date(2024, 5, 2), series_description="Jane Doe flexion"),
             "extension": _film(study_date=date(2024, 5, 2), series_description="x")}
    names = export_file_names(export_stem(films, anonymised=anonymised), [f.key for f in EXPORT_FORMATS])
    for name in names.values():
        for secret in ("doe", "jane", "778899", "1961"):
            assert secret not in name.lower()


def test_file_names_per_format_and_unsafe_stems():
    names = export_file_names("2024-05-02_flexion-extension_S3-4", ["pdf", "sr", "csv", "png", "json"])
    assert names == {
        "pdf": "2024-05-02_flexion-extension_S3-4.pdf",
        "sr": "2024-05-02_flexion-extension_S3-4_SR.dcm",
        "csv": "2024-05-02_flexion-extension_S3-4.csv",
        "png": "2024-05-02_flexion-extension_S3-4_films.png",
        "json": "2024-05-02_flexion-extension_S3-4.json",
    }
    # a typed stem cannot leave the folder or hide the file
    assert export_file_names("../../etc/passwd", ["pdf"]) == {"pdf": "etc-passwd.pdf"}
    assert export_file_names("  ", ["csv"]) == {"csv": "report.csv"}
    assert safe_file_part("a/b\\c:d*e") == "a-b-c-d-e"
    with pytest.raises(ValueError, match="unknown export format 'doc'"):
        export_file_names("x", ["doc"])
