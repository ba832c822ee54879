"""The progress/cancellation hook of the automatic methods (``checkpoint``)."""

from __future__ import annotations

import numpy as np
import pytest

from measure import Cancelled, detect_vertebrae, refine_corners, track_bodies
from tests.measure._synthetic_spine import make_pair


def _recorder():
    seen: list[float] = []
    return seen, seen.append


def test_tracking_reports_increasing_progress_and_the_same_answer():
    fixed, moving = make_pair(11)
    seen, checkpoint = _recorder()
    hooked = track_bodies(fixed.image, fixed.corners, moving.image, checkpoint=checkpoint)
    plain = track_bodies(fixed.image, fixed.corners, moving.image)
    # called between bodies (6 bodies: more calls than bodies), in [0, 1], never going back
    assert len(seen) > fixed.corners.shape[0]
    assert seen[0] == 0.0 and 0.9 <= seen[-1] <= 1.0
    assert np.all(np.diff(seen) >= 0)
    # observing does not change the result
    np.testing.assert_array_equal(hooked.landmarks, plain.landmarks)


@pytest.mark.parametrize("stop_after", [1, 4])
def test_tracking_stops_when_the_checkpoint_raises(stop_after):
    fixed, moving = make_pair(11)
    calls = []

    def checkpoint(fraction):
        calls.append(fraction)
        if len(calls) == stop_after:
            raise Cancelled

    with pytest.raises(Cancelled):
        track_bodies(fixed.image, fixed.corners, moving.image, checkpoint=checkpoint)
    assert len(calls) == stop_after  # nothing ran past the checkpoint that raised


def test_refinement_and_detection_call_the_checkpoint_and_stop():
    fixed, _ = make_pair(11)
    rough = fixed.corners + np.random.default_rng(0).normal(0, 1.5, fixed.corners.shape)
    seen, checkpoint = _recorder()
    refine_corners(fixed.image, rough, checkpoint=checkpoint)
    assert seen and seen[0] == 0.0 and np.all(np.diff(seen) > 0)

    def stop(fraction):
        raise Cancelled

    with pytest.raises(Cancelled):
        refine_corners(fixed.image, rough, checkpoint=stop)
    with pytest.raises(Cancelled):
        detect_vertebrae(fixed.image, checkpoint=stop)
