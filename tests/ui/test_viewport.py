"""Screen <-> image mapping: the half-pixel convention, zoom about a point, fit."""

import pytest

from ui._viewport import ViewTransform, mouse_to_widget, window_after_drag


def test_pixel_centre_convention_at_one_to_one():
    t = ViewTransform(1.0, 10.0, 20.0)
    # image pixel (0, 0) covers widget [10, 11) x [20, 21); its centre is image (0, 0)
    assert t.to_widget(0.0, 0.0) == (10.5, 20.5)
    assert t.to_widget(-0.5, -0.5) == (10.0, 20.0)
    # a mouse on widget pixel (10, 20) points at the centre of image pixel (0, 0)
    assert t.to_image(*mouse_to_widget(10, 20)) == (0.0, 0.0)
    assert t.to_image(*mouse_to_widget(15, 27)) == (5.0, 7.0)


def test_pixel_centre_convention_zoomed():
    t = ViewTransform(4.0, 0.0, 0.0)
    # image pixel 3 spans widget [12, 16); its centre 3.0 sits at widget 14
    assert t.to_widget(3.0, 3.0) == (14.0, 14.0)
    # mouse pixels 12..15 cover image x 2.625 .. 3.375 (centres of quarter pixels)
    assert [t.to_image(*mouse_to_widget(p, 0))[0] for p in (12, 13, 14, 15)] == [2.625, 2.875, 3.125, 3.375]


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.7])
def test_round_trip(scale):
    t = ViewTransform(scale, -13.25, 7.5)
    for x, y in [(0.0, 0.0), (123.456, 78.9), (-0.5, 2047.5)]:
        assert t.to_image(*t.to_widget(x, y)) == pytest.approx((x, y))


def test_zoom_keeps_point_under_cursor():
    t = ViewTransform(0.5, 3.0, 4.0)
    before = t.to_image(200.0, 150.0)
    z = t.zoomed(2.5, 200.0, 150.0)
    assert z.scale == 1.25
    assert z.to_image(200.0, 150.0) == pytest.approx(before)


def test_zoom_is_clamped():
    assert ViewTransform(60.0).zoomed(10, 0, 0).scale == 64.0
    assert ViewTransform(0.03).zoomed(0.1, 0, 0).scale == 0.02


def test_fit_centres_the_whole_image():
    t = ViewTransform.fit(rows=1000, columns=500, width=808, height=408, margin=4)
    assert t.scale == 0.4  # height limits: 400 / 1000
    left, top = t.to_widget(-0.5, -0.5)
    right, bottom = t.to_widget(499.5, 999.5)
    assert (top, bottom) == pytest.approx((4.0, 404.0))
    assert (left + right) / 2 == pytest.approx(404.0)


def test_centred_on_and_pan():
    t = ViewTransform().centred_on(100.0, 50.0, 400, 300, scale=2.0)
    assert t.to_widget(100.0, 50.0) == (200.0, 150.0)
    assert t.panned(5, -5).to_widget(100.0, 50.0) == (205.0, 145.0)


def test_visible_rect():
    t = ViewTransform(2.0, -20.0, 0.0)  # image x -0.5 at widget -20: pixel 10 starts at widget 0
    assert t.visible_image_rect(100, 100, rows=30, columns=300) == (10, 0, 60, 30)


def test_window_drag():
    assert window_after_drag((100.0, 50.0), 10, -5, 1000) == (90.0, 70.0)
    assert window_after_drag((100.0, 5.0), -1000, 0, 1000)[1] == 1.0
