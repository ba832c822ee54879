"""Both films of a study: facing and labels must agree; unsure detections are marked for review."""

from __future__ import annotations

import numpy as np
import pytest

from app.autolandmarks import _label_offset, detect_film, detect_study
from app.phantom import make_study


@pytest.fixture(scope="module")
def study():
    return make_study(90021, scale=0.35, facing="right")


def _images(study):
    return tuple(f.pixels.astype(np.float32) for f in study.films)


def test_label_offset_finds_a_one_level_shift_between_the_films(study):
    images = _images(study)
    flex = study.flexion.landmark_array(("L1", "L2", "L3", "L4", "L5"))
    ext = study.extension.landmark_array(("L1", "L2", "L3", "L4", "L5"))
    offset, scores = _label_offset(images, (flex, ext))
    assert offset == 0 and scores[0] > scores[1] + 0.1 and scores[0] > scores[-1] + 0.1
    # extension labelled one level lower (its "L2" is the true L1): flexion v matches extension v + 1
    shifted = study.extension.landmark_array(("T12", "L1", "L2", "L3", "L4"))
    offset, _ = _label_offset(images, (flex, shifted))
    assert offset == 1
    # and the other way round: the flexion film labelled one level lower
    flex_shifted = study.flexion.landmark_array(("T12", "L1", "L2", "L3", "L4"))
    offset, _ = _label_offset(images, (flex_shifted, ext))
    assert offset == -1


def test_detect_study_agrees_on_a_clean_study(study):
    flex, ext = detect_study(*_images(study))
    assert flex and ext
    for outcome in (flex, ext):
        check = outcome.details["study_check"]
        assert check["facing_agree"] and check["label_offset"] == 0
        assert outcome.details["facing"] == "right"
        assert not any("disagree" in r or "differ" in r for r in outcome.details["review_reasons"])


def test_films_that_disagree_on_the_facing_both_need_review(study):
    images = _images(study)
    mirrored = images[1][:, ::-1].copy()  # the extension film flipped: the patient faces left on it
    flex, ext = detect_study(images[0], mirrored)
    assert flex and ext
    assert not flex.details["study_check"]["facing_agree"]
    for outcome in (flex, ext):
        assert outcome.details["needs_review"]
        assert any("disagree on the facing" in r for r in outcome.details["review_reasons"])


def test_detect_film_states_label_confidence_and_reasons(study):
    outcome = detect_film(_images(study)[0])
    assert set(outcome.details["label_confidence"]) <= {"L1", "L2", "L3", "L4", "L5", "S1"}
    assert all(0.0 <= c <= 1.0 for c in outcome.details["label_confidence"].values())
    assert isinstance(outcome.details["needs_review"], bool)
    assert outcome.details["needs_review"] == bool(outcome.details["review_reasons"])


@pytest.mark.parametrize("seed", [90038])
def test_detect_study_gives_no_confident_wrong_level_or_facing(seed):
    # a test-only realistic study whose flexion film alone goes wrong (every label one
    # level off): whatever the pair gives without review must be right, and what is
    # wrong must carry a reason
    facing = ("left", "right")[seed % 2]
    study = make_study(seed, realistic=True, scale=0.5, facing=facing)
    images = []
    for film in study.films:
        img = film.pixels.astype(np.float32)
        images.append(-img if film.photometric == "MONOCHROME1" and film.export == "dicom" else img)
    def right(film, outcome) -> bool:
        sp = np.array(film.pixel_spacing_mm[::-1])
        per_level = np.nanmedian(np.linalg.norm((outcome.corners - film.landmark_array()) * sp, axis=-1), axis=1)
        placed = np.isfinite(per_level)
        return bool(np.all(per_level[placed] < 10.0)) and outcome.details["facing"] == facing

    # the guard is exercised: the flexion film alone is wrong (and says so)
    alone = detect_film(images[0])
    assert alone and not right(study.flexion, alone) and alone.details["needs_review"]
    for partner in (False, True):
        outcomes = detect_study(*images, partner=partner)
        for film, outcome in zip(study.films, outcomes, strict=True):
            if not outcome:
                assert outcome.reason.startswith("not found")
                continue
            if not right(film, outcome):
                assert outcome.details["needs_review"] and outcome.details["review_reasons"], film.view
    # with the partner step the extension film's labels (its own label evidence is the
    # stronger) are carried to the flexion film: both right, both still under review
    flex, ext = outcomes
    assert flex.details["tracked_from"] == "extension" and right(study.flexion, flex) and right(study.extension, ext)
    assert flex.details["needs_review"] and ext.details["needs_review"]
    assert any("takes the extension film's labels" in r for r in flex.details["review_reasons"])
