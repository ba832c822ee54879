"""The realistic phantom: each departure from the clean phantom does what it says, the truth stays exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.phantom import MEASURED_LEVELS, Realism, make_study, write_study
from tests.app.test_phantom_truth import _per_view

SCALE = 0.3  # 576 x 461 px of 0.56 mm: fast, and enough for the checks below


def _theta_t(film, upper: str, lower: str) -> tuple[float, float, float]:
    truth = film.landmarks()
    return _per_view(truth, list(film.pixel_spacing_mm), upper, lower)


def _posterior_disc_mm(film, upper: str, lower: str) -> float:
    """Distance of U's PI from L's superior endplate line, mm (from the truth corners)."""
    marks = film.landmarks()
    sp = np.array(film.pixel_spacing_mm[::-1])
    pi = np.array(marks[upper]["PI"]) * sp
    ps, as_ = np.array(marks[lower]["PS"]) * sp, np.array(marks[lower]["AS"]) * sp
    e1 = (as_ - ps) / np.linalg.norm(as_ - ps)
    d = pi - ps
    return float(abs(e1[0] * d[1] - e1[1] * d[0]))


def test_default_options_carry_no_realism_in_the_truth():
    study = make_study(3, scale=0.1)
    generator = study.truth()["generator"]
    assert "realism" not in generator and "realistic" not in generator


def test_truth_motion_still_matches_the_landmarks_with_every_anatomical_change():
    realism = Realism(lordosis_loss_deg=15.0, narrow_discs=("L4-L5", "L5-S1"), listhesis_mm=6.0,
                      listhesis_segment="L4-L5", osteophytes_mm=4.0, crest_rise_mm=20.0)  # fmt: skip
    study = make_study(21, scale=SCALE, realism=realism)
    for segment in ("L1-L2", "L3-L4", "L4-L5", "L5-S1"):
        upper, lower = segment.split("-")
        th_f, t_f, _ = _theta_t(study.flexion, upper, lower)
        th_e, t_e, _ = _theta_t(study.extension, upper, lower)
        m = study.motion[segment]
        assert th_f == pytest.approx(m["theta_flexion_deg"], abs=1e-6)
        assert th_e == pytest.approx(m["theta_extension_deg"], abs=1e-6)
        assert t_f - t_e == pytest.approx(m["dt_mm"], abs=1e-6)
    # the listhesis is in both films: L4 sits >= 5 mm forward of L5 (clean phantom: < 1.5 mm)
    assert min(study.motion["L4-L5"]["translation_flexion_mm"],
               study.motion["L4-L5"]["translation_extension_mm"]) > 6.0 - 3.0 * 0.5 - 0.4 - 0.01


def test_narrow_discs_and_flat_back_change_what_the_film_shows():
    clean = make_study(21, scale=SCALE)
    flat = make_study(21, scale=SCALE, realism=Realism(lordosis_loss_deg=15.0, narrow_discs=("L5-S1",)))
    narrow_clean = _posterior_disc_mm(clean.extension, "L5", "S1")
    narrow = _posterior_disc_mm(flat.extension, "L5", "S1")
    assert narrow < 0.6 * narrow_clean
    # lower segments of the flexion film: straight or kyphotic (clean flexion: lordotic, > 3 deg)
    for seg in ("L4-L5",):
        upper, lower = seg.split("-")
        assert _theta_t(clean.flexion, upper, lower)[0] > 3.0
        assert _theta_t(flat.flexion, upper, lower)[0] < 1.0
    # the patient's bodies are the same: L3's endplate depth is unchanged
    assert _theta_t(flat.flexion, "L3", "L4")[2] == pytest.approx(_theta_t(clean.flexion, "L3", "L4")[2])


def test_sacralised_l5_does_not_move_and_lumbarised_s1_shows_a_disc_below_s1():
    fused = make_study(5, scale=SCALE, realism=Realism(transitional="sacralised-L5"))
    m = fused.motion["L5-S1"]
    assert abs(m["dtheta_deg"]) < 1e-9 and abs(m["dt_mm"]) < 1e-9
    assert _posterior_disc_mm(fused.flexion, "L5", "S1") < 1.5
    clean = make_study(5, scale=SCALE)
    lumbar = make_study(5, scale=SCALE, realism=Realism(transitional="lumbarised-S1"))
    # same anatomy and pose above: identical truth corners
    np.testing.assert_array_equal(lumbar.flexion.corners_px, clean.flexion.corners_px)
    # along the sacral axis ~27 mm below S1's endplate the lumbarised film is dark (a disc), the clean one is not
    s1 = clean.flexion.landmarks()["S1"]
    ps, as_ = np.array(s1["PS"]), np.array(s1["AS"])
    mid = (ps + as_) / 2
    e1 = (as_ - ps) / np.linalg.norm(as_ - ps)
    down = np.array([-e1[1], e1[0]])
    if down[1] < 0:
        down = -down
    px_mm = clean.flexion.pixel_spacing_mm[0]

    def profile(film):
        img = film.pixels.astype(float)
        steps = np.arange(10.0, 40.0, 0.5) / px_mm
        pts = mid + steps[:, None] * down
        return img[np.round(pts[:, 1]).astype(int), np.round(pts[:, 0]).astype(int)]

    drop_lumbar = np.median(profile(lumbar.flexion)) - profile(lumbar.flexion).min()
    drop_clean = np.median(profile(clean.flexion)) - profile(clean.flexion).min()
    assert drop_lumbar > 1.6 * drop_clean


def test_crop_through_l1_shifts_rows_and_corners_exactly():
    full = make_study(8, scale=SCALE)
    cropped = make_study(8, scale=SCALE, realism=Realism(crop_top=True))
    for a, b in zip(full.films, cropped.films, strict=True):
        cut = a.pixels.shape[0] - b.pixels.shape[0]
        l1 = a.corners_px[2]
        assert np.nanmin(l1[:, 1]) < cut < np.nanmax(l1[:, 1])  # through L1
        np.testing.assert_array_equal(b.pixels, a.pixels[cut:])
        np.testing.assert_allclose(b.corners_px, a.corners_px - np.array([0.0, cut]))
        inside = cropped.truth()[b.view]["inside_film"]
        assert not inside["L1"] and inside["L2"] and inside["S1"]


def test_text_and_shutter_leave_the_anatomy_and_truth_alone():
    clean = make_study(8, scale=SCALE)
    marked = make_study(8, scale=SCALE, realism=Realism(burned_in_text=True, shutter=True))
    for a, b in zip(clean.films, marked.films, strict=True):
        np.testing.assert_array_equal(a.corners_px, b.corners_px)
        changed = a.pixels != b.pixels
        assert 0.05 < changed.mean() < 0.5  # borders and text only
        assert np.any(b.pixels == 4095) and np.any(b.pixels == 0)
        # the spine itself is untouched
        box = np.vstack([b.corners_px[3:7].reshape(-1, 2)])
        x0, y0 = np.floor(box.min(0)).astype(int)
        x1, y1 = np.ceil(box.max(0)).astype(int)
        assert not changed[y0:y1, x0:x1].any()


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_8bit_export_is_downscaled_uncalibrated_and_reads_back(tmp_path, kind):
    from app.dicom_io import load_film

    realism = Realism(export=kind, export_spacing_mm=0.8)
    study = make_study(9, scale=SCALE, realism=realism)
    clean = make_study(9, scale=SCALE)
    for a, b in zip(clean.films, study.films, strict=True):
        assert b.pixels.dtype == np.uint8 and b.bits_stored == 8
        # the patient-plane size of the film is unchanged
        assert b.pixels.shape[1] * b.pixel_spacing_mm[1] == pytest.approx(a.pixels.shape[1] * a.pixel_spacing_mm[1])
        assert b.pixel_spacing_mm[1] == pytest.approx(0.8, rel=0.01)
        # corners scale about pixel centres: L3's endplate depth in mm is the same on both
        def depth_mm(film):
            corners = film.landmark_array()[2]
            return np.linalg.norm((corners[0] - corners[1]) * np.array(film.pixel_spacing_mm[::-1]))

        assert depth_mm(b) == pytest.approx(depth_mm(a), rel=0.01)
    paths = write_study(study, tmp_path)
    assert paths["flexion"].suffix == (".png" if kind == "png" else ".jpg")
    truth = json.loads(paths["truth"].read_text())
    assert truth["flexion"]["header_calibration"]["source"] == "uncalibrated"
    assert truth["generator"]["realism"]["export"] == kind
    film = load_film(paths["flexion"])
    assert film.calibration.spacing_mm is None
    np.testing.assert_array_equal(np.asarray(film.pixels).astype(np.uint8), study.flexion.pixels)


def test_realistic_preset_is_seeded_and_varied():
    drawn = [make_study(s, scale=0.1, realistic=True).options.realism for s in range(40)]
    again = make_study(7, scale=0.1, realistic=True).options.realism
    assert again == drawn[7]
    assert sum(r.export != "dicom" for r in drawn) >= 15
    assert sum("L5-S1" in r.narrow_discs for r in drawn) >= 8
    assert sum(r.crop_top for r in drawn) >= 2
    assert sum(r.lordosis_loss_deg > 8 for r in drawn) >= 10
    assert len({r for r in drawn}) == 40
    # the patient of a seed is the same with and without the preset (realism has its own stream)
    clean = make_study(7, scale=0.1)
    assert clean.truth()["generator"]["seed"] == 7
    assert make_study(7, scale=0.1, realistic=True).motion["L1-L2"]["dt_mm"] == pytest.approx(
        clean.motion["L1-L2"]["dt_mm"]
    )


def test_realism_rejects_bad_values_with_the_field_name():
    with pytest.raises(ValueError, match="narrow_discs"):
        Realism(narrow_discs=("L1-L2",))
    with pytest.raises(ValueError, match="export"):
        Realism(export="gif")


def test_measured_levels_unchanged():
    assert MEASURED_LEVELS == ("L1", "L2", "L3", "L4", "L5", "S1")


def test_cli_realistic_writes_what_the_api_draws(tmp_path, capsys):
    from app.cli import main

    seed = next(s for s in range(50) if make_study(s, scale=0.1, realistic=True).options.realism.export == "png")
    status = main(["phantom", str(tmp_path), "--seed", str(seed), "--scale", "0.2", "--realistic"])
    assert status == 0
    expected = make_study(seed, scale=0.2, realistic=True)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth == json.loads(json.dumps(expected.truth()))
    assert (tmp_path / "flexion.png").exists() and not (tmp_path / "flexion.dcm").exists()
    assert "realism: " in capsys.readouterr().out
