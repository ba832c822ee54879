"""A plain scalar implementation of measurement.md §2–4, written independently of
``measure._motion`` (loops, ``math`` only, unit vectors built literally as the
spec words them).  Used by the tests and by ``benchmarks/bench_motion.py``.
"""

from __future__ import annotations

import math

AS, PS, PI, AI = range(4)


def _film_segment(upper, lower, sx, sy):
    """theta (deg), t, d_L for one segment of one film (working unit: sx, sy scale)."""

    def pt(p):
        return (p[0] * sx, p[1] * sy)

    ps, as_ = pt(lower[PS]), pt(lower[AS])
    pi, ai = pt(upper[PI]), pt(upper[AI])
    d = math.hypot(as_[0] - ps[0], as_[1] - ps[1])
    e1 = ((as_[0] - ps[0]) / d, (as_[1] - ps[1]) / d)
    # the two perpendiculars; e2 is the one on the side of U (towards U's centroid)
    n = (-e1[1], e1[0])
    mid = ((pi[0] + ai[0]) / 2 - ps[0], (pi[1] + ai[1]) / 2 - ps[1])
    corners = [pt(p) for p in upper if not math.isnan(p[0])]
    centroid = (
        sum(p[0] for p in corners) / len(corners) - ps[0],
        sum(p[1] for p in corners) / len(corners) - ps[1],
    )
    e2 = n if centroid[0] * n[0] + centroid[1] * n[1] > 0 else (-n[0], -n[1])
    i = (ai[0] - pi[0], ai[1] - pi[1])
    theta = math.degrees(math.atan2(i[0] * e2[0] + i[1] * e2[1], i[0] * e1[0] + i[1] * e1[1]))
    t = (pi[0] - ps[0]) * e1[0] + (pi[1] - ps[1]) * e1[1]
    # U's inferior endplate midpoint in L's frame, as a fraction of depth (for the centre of rotation)
    frame = ((mid[0] * e1[0] + mid[1] * e1[1]) / d, (mid[0] * e2[0] + mid[1] * e2[1]) / d)
    return theta, t, d, frame


def _fixed_point(p_f, p_e, phi_deg):
    """Fixed point c of the rigid motion rotating by phi and taking p_f to p_e (Cramer's rule)."""
    c, s = math.cos(math.radians(phi_deg)), math.sin(math.radians(phi_deg))
    # c_pt = R c_pt + (p_e - R p_f)  ->  (I - R) c_pt = p_e - R p_f
    bx = p_e[0] - (c * p_f[0] - s * p_f[1])
    by = p_e[1] - (s * p_f[0] + c * p_f[1])
    a11, a12, a21, a22 = 1 - c, s, -s, 1 - c
    det = a11 * a22 - a12 * a21
    return ((bx * a22 - a12 * by) / det, (a11 * by - a21 * bx) / det)


def scalar_motion(flexion, extension, spacing_mm=None, thresholds=(4.0, None, 10.0), min_rotation_deg=5.0):
    """One study: list of per-segment dicts.

    ``flexion``/``extension`` are nested sequences (V, 4, 2) in pixels; ``spacing_mm``
    (row, column) for both films or None; ``thresholds`` = (mm, %, degrees), None = unused.
    """
    if spacing_mm is None:
        sx = sy = 1.0
    else:
        sy, sx = float(spacing_mm[0]), float(spacing_mm[1])
    rows = []
    for k in range(len(flexion) - 1):
        values = [flexion[k][PI][0], flexion[k + 1][PS][0], extension[k][PI][0], extension[k + 1][PS][0]]
        if any(math.isnan(v) for v in values):
            rows.append(None)
            continue
        th_f, t_f, d_f, m_f = _film_segment(flexion[k], flexion[k + 1], sx, sy)
        th_e, t_e, d_e, m_e = _film_segment(extension[k], extension[k + 1], sx, sy)
        dtheta = th_e - th_f
        dt = t_f - t_e
        pct = 100 * dt / ((d_f + d_e) / 2)
        mm = dt if spacing_mm is not None else math.nan
        t_thr, p_thr, a_thr = thresholds
        t_unstable = (t_thr is not None and abs(mm) > t_thr) or (p_thr is not None and abs(pct) > p_thr)
        a_unstable = a_thr is not None and abs(dtheta) > a_thr
        centre = _fixed_point(m_f, m_e, dtheta) if abs(dtheta) >= min_rotation_deg else (math.nan, math.nan)
        rows.append(
            {
                "flexion_angle_deg": th_f,
                "extension_angle_deg": th_e,
                "flexion_translation_pct": 100 * t_f / d_f,
                "extension_translation_pct": 100 * t_e / d_e,
                "angulation_deg": dtheta,
                "translation_mm": mm,
                "translation_pct": pct,
                "translation_unstable": bool(t_unstable),
                "angulation_unstable": bool(a_unstable),
                "unstable": bool(t_unstable or a_unstable),
                "rotation_centre": centre,
            }
        )
    return rows


def scalar_batch(flexion, extension, spacing_mm=None):
    """Loop of :func:`scalar_motion` over studies of shape (N, V, 4, 2)."""
    return [scalar_motion(f, e, spacing_mm) for f, e in zip(flexion, extension, strict=True)]
