"""Automatic landmarks in the viewer: Auto, Detect, Track and Refine, off the UI thread.

The algorithms and their wiring to films are :mod:`app.autolandmarks` (issue
#5, #12); this module runs them in the background (:mod:`ui.qt_tasks`: progress
in the status bar, Esc cancels, the window keeps painting and panning) and puts
the result in the session as one undoable edit
(:meth:`app.session.Session.merge_landmarks`) when the run completes.  A
cancelled run changes nothing.  A body the tool could not place keeps the
reader's corners and its reason is shown in the window, never hidden.

*Auto* (toolbar) does what the films allow in one run and one undo step:

1. when neither film has corners, detect the bodies on the extension film (or
   the one film), else start from the film the reader outlined (more corners);
2. refine the reader's own clicks on that film (refinement measurably helps
   quick clicks; detected corners are refined by the detector already, and
   tracked ones are tighter than refinement): a body takes the refined
   corners only when their SD is below the SD it has;
3. track the bodies to the other film and detect them on the other film too:
   :func:`app.autolandmarks.check_tracking` (the guard shared with ``track``,
   ``complete`` and batch) leaves unplaced, and asks the reader about the
   labels, every body where tracking and detection disagree by more than half
   an endplate depth: a body a level off is never placed silently.

*Track* runs the same guard (:func:`app.autolandmarks.track_checked`).

When detection is unsure of a level label (low confidence, or the detector
says ``needs_review``) the reader is asked to confirm the labels (Enter) or
shift them, and the results do not count until then
(:meth:`app.session.Session.request_label_review`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtGui import QAction, QKeySequence

from app import autolandmarks
from app.background import shared_worker
from app.session import ROLES
from measure import PlacementMethod

__all__ = ["LABEL_CONFIDENCE_MIN", "QtAutoLandmarks", "install_auto_landmarks"]

#: A detected body below this confidence makes its label uncertain: the reader confirms.
LABEL_CONFIDENCE_MIN = 0.5


def _other(role: str) -> str:
    return "extension" if role == "flexion" else "flexion"


def _scaled(checkpoint: Callable[[float], None], start: float, stop: float) -> Callable[[float], None]:
    """A checkpoint for one step of a chain, mapping its [0, 1] onto [start, stop]."""
    return lambda fraction: checkpoint(start + (stop - start) * fraction)


def _current_sd_mm(state: Any) -> np.ndarray:
    """SD (mm) of each corner of a film state: its own, else its placement method's default."""
    sd = np.array(state.landmark_sd_mm, dtype=float)
    default = np.array(
        [[PlacementMethod(m or "manual").default_sd_mm for m in row] for row in state.placement], dtype=float
    )
    return np.where(np.isfinite(sd), sd, default)


def label_doubts(outcome: Any, levels: tuple[str, ...]) -> list[str]:
    """Why the labels of a detection need the reader's confirmation (empty: they do not).

    Uses the detector's own ``needs_review`` / per-label confidence when it
    gives them (``details``), else the per-body confidence (``quality``).
    """
    details = getattr(outcome, "details", {}) or {}
    doubts = []
    review = details.get("needs_review")
    if isinstance(review, str) and review:
        doubts.append(review)
    elif review is True:
        doubts.append("the detector asks for review of the level labels")
    confidence = details.get("label_confidence")
    if isinstance(confidence, dict):
        pairs = [(str(k), float(v)) for k, v in confidence.items()]
    else:
        quality = np.asarray(getattr(outcome, "quality", []), dtype=float)
        pairs = [(lv, float(q)) for lv, q in zip(levels, quality, strict=False) if np.isfinite(q)]
    low = [f"{lv} {q:.2f}" for lv, q in pairs if q < LABEL_CONFIDENCE_MIN]
    if low:
        doubts.append(f"low label confidence ({', '.join(low)} < {LABEL_CONFIDENCE_MIN:.2f})")
    return doubts


class QtAutoLandmarks:
    """Auto, Detect, Track and Refine of one :class:`ui.qt_main_window.QtMainWindow`.

    Attributes
    ----------
    last_summary : list of str
        What the last run placed or could not place, one line per body.
    last_placed : int
        Corners placed by the last completed run.
    """

    def __init__(self, window) -> None:
        self.window = window
        self.session = window.session
        self.tasks = window.tasks
        self.worker = shared_worker()  # the methods run in a process: the UI thread never waits
        self._warm = False
        self.last_summary: list[str] = []
        self.last_placed = 0
        menu = window.landmarks_menu
        menu.addSeparator()
        actions = window.actions_by_name
        auto = QAction("&Auto (detect or track, refine where it helps)", window)
        auto.setShortcut(QKeySequence("Ctrl+Shift+A"))
        auto.setIconText("Auto")
        auto.setStatusTip("Find the bodies on one film, refine them and carry them to the other film")
        auto.triggered.connect(lambda _=False: self.auto())
        menu.addAction(auto)
        window.addAction(auto)
        actions["auto"] = auto
        # one mnemonic per item of the Landmarks menu (G, I, U, D, W are taken above)
        mnemonic = {"flexion": ("T", "N"), "extension": ("R", "X")}
        for source in ROLES:
            target = _other(source)
            act = QAction(
                _mnemonic(f"Track {source} → {target} (carry the bodies over)", mnemonic[source][0]), window
            )
            act.setStatusTip(
                f"Find each body outlined on the {source} film in the {target} film by rigid "
                "registration of its own pixels"
            )
            act.triggered.connect(lambda _=False, s=source: self.track(s))
            menu.addAction(act)
            actions[f"track_{source}"] = act
        for role, key in zip(ROLES, ("E", "F"), strict=True):
            act = QAction(_mnemonic(f"Refine corners on the {role} film (snap to the cortex)", key), window)
            act.triggered.connect(lambda _=False, r=role: self.refine(r))
            menu.addAction(act)
            actions[f"refine_{role}"] = act
        for role, key in zip(ROLES, ("V", "B"), strict=True):
            act = QAction(_mnemonic(f"Detect vertebrae on the {role} film (no clicks; review them)", key), window)
            act.triggered.connect(lambda _=False, r=role: self.detect(r))
            menu.addAction(act)
            actions[f"detect_{role}"] = act
        # one click inside each body (or inside the first and the last): every corner, refined
        self.one_click_action = QAction(_mnemonic("One click per body (then all corners, refined)", "O"), window)
        self.one_click_action.setCheckable(True)
        self.one_click_action.setShortcut(QKeySequence("O"))
        self.one_click_action.setIconText("One click")
        self.one_click_action.setStatusTip(
            "Click inside each body top to bottom (or inside the first and the last, then O): every corner "
            "is placed and refined, and the other film is tracked"
        )
        self.one_click_action.toggled.connect(self._on_one_click_toggled)
        menu.addAction(self.one_click_action)
        window.addAction(self.one_click_action)
        actions["one_click"] = self.one_click_action
        if "guided" in actions and getattr(window, "toolbar", None) is not None:
            window.toolbar.insertAction(actions["guided"], self.one_click_action)
        for view in getattr(window, "views", {}).values():
            view.bodyClicked.connect(self._on_body_clicked)
        if "guided" in actions:  # guided placement ends the one-click mode (its clicks are dropped)
            actions["guided"].toggled.connect(lambda on: on and self._drop_clicks())
        # toolbar: Detect acts on the extension film (or the one film), Track from the outlined film
        self.detect_action = QAction("Detect", window)
        self.detect_action.setStatusTip("Detect the vertebrae on the extension film (or the one film open)")
        self.detect_action.triggered.connect(lambda _=False: self.detect(self._detect_role()))
        self.track_action = QAction("Track", window)
        self.track_action.setShortcut(QKeySequence("T"))
        self.track_action.setStatusTip("Carry the bodies from the outlined film to the other film")
        self.track_action.triggered.connect(lambda _=False: self.track(self._track_source()))
        window.addAction(self.track_action)
        actions["detect"], actions["track"] = self.detect_action, self.track_action
        self.tasks.started.connect(lambda _name: self._on_films_change())
        self.tasks.finished.connect(lambda _name, _how: self._on_films_change())
        self.session.events.films.connect(self._on_films_change)
        self._on_films_change()

    def _on_films_change(self, event=None) -> None:
        roles = self.session.roles
        actions = self.window.actions_by_name
        if roles and not self._warm:  # start the worker's imports while the reader looks
            self.worker.warm_up()
            self._warm = True
        idle = not self.tasks.busy
        review = getattr(self.window, "review", None)
        editable = idle and not (review is not None and review.active)
        for role in ROLES:
            actions[f"track_{role}"].setEnabled(editable and len(roles) == 2)
            actions[f"refine_{role}"].setEnabled(editable and role in roles)
            actions[f"detect_{role}"].setEnabled(editable and role in roles)
        actions["auto"].setEnabled(editable and bool(roles))
        actions["one_click"].setEnabled(editable and bool(roles))
        actions["detect"].setEnabled(editable and bool(roles))
        actions["track"].setEnabled(editable and len(roles) == 2)

    # ----------------------------------------------------------------- helpers

    def _detect_role(self) -> str:
        roles = self.session.roles
        return "extension" if "extension" in roles or not roles else roles[0]

    def _track_source(self) -> str:
        counts = {r: int(np.isfinite(self.session.landmarks(r)).all(-1).sum()) for r in ROLES}
        return "flexion" if counts["flexion"] >= counts["extension"] else "extension"

    def _film(self, role: str) -> Any:
        state = self.session.film(role)
        if state is None or state.film is None:
            self.window.show_error(f"the {role} film is not open: its pixels are needed")
            return None
        return state.film

    def _apply(self, role: str, outcome, description: str) -> int:
        if not outcome:
            self.window.show_error(f"{description} ({role}): {outcome.reason}")
            self.last_summary = [outcome.reason]
            self.last_placed = 0
            return 0
        n = self.session.merge_landmarks(role, outcome.corners, outcome.placement, outcome.sd_mm, description)
        self.last_summary = outcome.summary()
        self.last_placed = n
        self._report(role, outcome, description, n)
        if "cross_check" in outcome.details and outcome.details.get("review_reasons"):
            self.session.request_label_review("; ".join(outcome.details["review_reasons"]))
        return n

    def _report(self, role: str, outcome, description: str, n: int) -> None:
        failures = [f"{level}: {reason}" for level, reason in outcome.failures.items()]
        text = f"{description} ({role}): {n} corners placed"
        if failures:
            self.window.banner.show_message(
                f"{text}; not placed, your corners kept: " + "; ".join(failures), "warning"
            )
        self.window.statusBar().showMessage(text, 8000)

    def _ask_labels(self, outcome, role: str) -> None:
        doubts = label_doubts(outcome, self.session.levels)
        if doubts:
            self.session.request_label_review(f"{role} film: " + "; ".join(doubts))

    # ----------------------------------------------------------------- one click per body

    def _on_one_click_toggled(self, on: bool) -> None:
        """Enter the one-click mode, or leave it and complete the films clicked."""
        views = getattr(self.window, "views", {})
        if on:
            if self.window.actions_by_name["guided"].isChecked():
                self.window.set_guided(False)
            for view in views.values():
                view.state.mode = "clicks"
                view.state.clicks.clear()
                view.update()
            self.window.statusBar().showMessage(
                f"One click: click inside each body, {self.session.levels[0]} to {self.session.levels[-1]} "
                f"(or inside {self.session.levels[0]} and {self.session.levels[-1]} only, then press O)", 15000
            )
            return
        clicks = {role: list(v.state.clicks) for role, v in views.items() if v.state.clicks}
        for view in views.values():
            if view.state.mode == "clicks":  # guided placement may have taken over
                view.state.mode = "edit"
            view.state.clicks.clear()
            view.update()
        if clicks:
            self.complete(clicks)

    def _drop_clicks(self) -> None:
        for view in getattr(self.window, "views", {}).values():
            view.state.clicks.clear()
        self.one_click_action.setChecked(False)

    def _on_body_clicked(self, role: str) -> None:
        view = self.window.views[role]
        view.update()
        if len(view.state.clicks) >= len(self.session.levels):  # every body clicked: complete now
            self.one_click_action.setChecked(False)

    def complete(self, clicks: dict[str, list[tuple[float, float]]]) -> bool:
        """All corners of the clicked films from their clicks; the film without clicks is tracked (guarded).

        Parameters
        ----------
        clicks : dict of str to list of (x, y)
            Per film: one point inside each body of ``session.levels`` in
            order, or two points (inside the first and the last body: the
            bodies between are found along the column).

        Returns True when the run started (one undo step when it completes).
        """
        levels = self.session.levels
        seeds: dict[str, dict[str, tuple[float, float]]] = {}
        for role, pts in clicks.items():
            if len(pts) == len(levels):
                seeds[role] = dict(zip(levels, pts, strict=True))
            elif len(pts) == 2:
                seeds[role] = {levels[0]: pts[0], levels[-1]: pts[1]}
            else:
                self.window.show_error(
                    f"One click ({role}): {len(pts)} clicks; click inside every body ({len(levels)}), "
                    f"or inside {levels[0]} and {levels[-1]} only"
                )
                return False
        roles = self.session.roles
        films = {r: self._film(r) for r in roles}
        if any(f is None for f in films.values()):
            return False
        calibration = {r: self.session.calibration(r) for r in roles}
        order = [r for r in ROLES if r in seeds]
        target = next((r for r in roles if r not in seeds), None)
        call = self.worker.call

        def work(checkpoint):
            pixels = {r: _pixels(f) for r, f in films.items()}
            steps: dict[str, Any] = {}
            facing = None  # the second clicked film takes the first one's facing: they cannot disagree
            for k, role in enumerate(order):
                checkpoint(0.4 * k / len(order))
                done = call(
                    autolandmarks.complete_film, pixels[role], seeds[role], levels=levels, facing=facing,
                    calibration=calibration[role],
                )  # fmt: skip
                steps[role] = done
                if not done:
                    return steps
                facing = done.details["facing"]
            if target is not None:
                source = order[0]
                steps["track"] = call(
                    autolandmarks.track_checked, pixels[source], steps[source].corners, pixels[target],
                    levels=levels, target_calibration=calibration[target], target_name=target,
                    source_facing=facing, checkpoint=_scaled(checkpoint, 0.4, 1.0),
                )  # fmt: skip
            return steps

        return self.tasks.start("One click", work, lambda steps: self._apply_clicks(steps, order, target))

    def _apply_clicks(self, steps: dict[str, Any], order: list[str], target: str | None) -> None:
        for role in order:
            if role in steps and not steps[role]:
                self.window.show_error(f"One click ({role}): {steps[role].reason}")
                self.last_summary = [steps[role].reason]
                return
        marks = {role: (steps[role].corners, steps[role].placement, steps[role].sd_mm) for role in order}
        tracked = steps.get("track")
        done = [f"completed the {role} film ({len(steps[role].placed)} bodies)" for role in order]
        if tracked:
            marks[target] = (tracked.corners, tracked.placement, tracked.sd_mm)
            done.append(f"tracked {len(tracked.placed)} bodies to the {target} film")
        self.last_placed = self.session.merge_landmarks_of(marks, "One click: " + ", ".join(done))
        self.last_summary = [line for role in order for line in steps[role].summary()]
        notes = []
        for role in order:
            out = steps[role]
            notes += [f"{role} {lv}: {why}" for lv, why in {**out.failures, **out.details["unrefined"]}.items()]
            if not out.details["facing_evidence"].get("sure", True):
                notes.append(f"{role}: the facing ({out.details['facing']}) is unsure: check it")
        if tracked:
            self.last_summary += tracked.summary()
            status = tracked.details["cross_check"]["status"]
            notes += [f"{target} {lv}: {why}" for lv, why in tracked.failures.items() if status.get(lv) != "disagree"]
            if tracked.details.get("review_reasons"):
                self.session.request_label_review("; ".join(tracked.details["review_reasons"]))
        elif tracked is not None:
            notes.append(f"tracking to the {target} film failed: {tracked.reason}")
        if notes:
            self.window.banner.show_message("One click: check these: " + "; ".join(notes), "warning")
        self.window.statusBar().showMessage("One click: " + ", ".join(done), 8000)

    # ----------------------------------------------------------------- the actions

    def track(self, source: str) -> bool:
        """Carry the bodies outlined on ``source`` to the other film, in the background.

        Returns True when the run started; the corners are placed when it completes.
        """
        target = _other(source)
        films = self._film(source), self._film(target)
        if films[0] is None or films[1] is None:
            return False
        corners = self.session.landmarks(source)
        if not np.isfinite(corners).any():
            self.window.show_error(f"track: outline the bodies on the {source} film first")
            return False
        levels, calibration = self.session.levels, self.session.calibration(target)

        def work(checkpoint):
            # guarded: a body that a detection on the target film puts elsewhere is left unplaced
            return self.worker.call(
                autolandmarks.track_checked, _pixels(films[0]), corners, _pixels(films[1]),
                levels=levels, target_calibration=calibration, target_name=target, checkpoint=checkpoint,
            )  # fmt: skip

        return self.tasks.start(
            f"Track {source} → {target}", work, lambda out: self._apply(target, out, f"Track from {source}")
        )

    def refine(self, role: str) -> bool:
        """Snap the placed corners of ``role`` to the cortical corners, in the background."""
        film = self._film(role)
        if film is None:
            return False
        corners = self.session.landmarks(role)
        if not np.isfinite(corners).any():
            self.window.show_error(f"refine: place the corners on the {role} film first")
            return False
        levels, calibration = self.session.levels, self.session.calibration(role)

        def work(checkpoint):
            return self.worker.call(
                autolandmarks.refine_film, _pixels(film), corners,
                levels=levels, calibration=calibration, checkpoint=checkpoint,
            )  # fmt: skip

        return self.tasks.start(f"Refine ({role})", work, lambda out: self._apply(role, out, "Refine"))

    def detect(self, role: str) -> bool:
        """Find the bodies on ``role`` without any click, in the background.

        Detected corners replace the film's corners of the bodies found (one undo
        step); they are ``detected`` (unreviewed, larger SD) until moved.
        """
        film = self._film(role)
        if film is None:
            return False
        levels, calibration = self.session.levels, self.session.calibration(role)

        def work(checkpoint):
            return self.worker.call(
                autolandmarks.detect_film, _pixels(film),
                levels=levels, calibration=calibration, checkpoint=checkpoint,
            )  # fmt: skip

        def done(outcome) -> None:
            if self._apply(role, outcome, "Detect"):
                self._ask_labels(outcome, role)

        return self.tasks.start(f"Detect ({role})", work, done)

    def auto(self) -> bool:
        """Detect (or start from the reader's outline), refine where it helps, track: one undo step."""
        roles = self.session.roles
        if not roles:
            self.window.show_error("Auto: open the flexion and extension films first")
            return False
        counts = {r: int(np.isfinite(self.session.landmarks(r)).all(-1).sum()) for r in roles}
        outlined = max(roles, key=lambda r: (counts[r], r == "flexion"))
        detect = counts[outlined] == 0
        source = self._detect_role() if detect else outlined
        target = _other(source) if len(roles) == 2 else None
        films = {r: self._film(r) for r in roles}
        if any(f is None for f in films.values()):
            return False
        state = self.session.film(source)
        levels = self.session.levels
        calibration = {r: self.session.calibration(r) for r in roles}
        corners = state.landmarks.copy()
        sd_now = _current_sd_mm(state)
        placement_now = state.placement.copy()

        call = self.worker.call

        def work(checkpoint):
            pixels = {r: _pixels(f) for r, f in films.items()}
            steps: dict[str, Any] = {}
            lm, placement, sd = corners.copy(), placement_now.copy(), sd_now.copy()
            src, tgt = source, target
            if detect and tgt is not None and tuple(levels)[-1:] == ("S1",):
                # both films: facing and labels must agree, and a sure film's bodies are carried
                # onto a partner that detection refuses or is unsure of (guarded tracking)
                pair = call(
                    autolandmarks.detect_study, pixels["flexion"], pixels["extension"], levels=levels,
                    calibrations=(calibration["flexion"], calibration["extension"]),
                    checkpoint=_scaled(checkpoint, 0.0, 0.6),
                )  # fmt: skip
                both = dict(zip(ROLES, pair, strict=True))
                helped = [r for r in ROLES if both[r] and both[r].details.get("tracked_from")]
                if helped:
                    tgt = helped[0]
                    src = both[tgt].details["tracked_from"]
                    steps["track"], steps["guarded"] = both[tgt], True
                else:
                    if not both[src] and both[tgt]:
                        src, tgt = tgt, src
                    steps["check"] = both[tgt]  # the guard's detection on the target: already run
                steps["roles"] = (src, tgt)
                found = steps["detect"] = both[src]
            elif detect:
                found = steps["detect"] = call(
                    autolandmarks.detect_film, pixels[src], levels=levels, calibration=calibration[src],
                    checkpoint=_scaled(checkpoint, 0.0, 0.3),
                )  # fmt: skip
            if detect:
                if not found:
                    return steps
                got = np.isfinite(found.corners).all(-1)
                lm = np.where(got[..., None], found.corners, np.nan)
                placement = np.where(got, found.placement, None).astype(object)
                default = PlacementMethod.DETECTED.default_sd_mm
                sd = np.where(got, np.where(np.isfinite(found.sd_mm), found.sd_mm, default), np.nan)
            # refinement helps the reader's quick clicks; detected corners are refined by the
            # detector already and tracked ones are tighter than refinement (docs/auto-landmarks.md)
            manual = np.isfinite(lm).all(-1) & (placement == PlacementMethod.MANUAL.value)
            clicked = manual.any(-1) & np.all(manual | ~np.isfinite(lm).all(-1), axis=-1)
            if clicked.any():
                refined = call(
                    autolandmarks.refine_film, pixels[src], np.where(clicked[:, None, None], lm, np.nan),
                    levels=levels, calibration=calibration[src], checkpoint=_scaled(checkpoint, 0.3, 0.4),
                )  # fmt: skip
                steps["refine"] = refined
                if refined:
                    new_sd = np.where(
                        np.isfinite(refined.sd_mm), refined.sd_mm, PlacementMethod.REFINED.default_sd_mm
                    )
                    got = np.isfinite(refined.corners).all(-1)
                    # a body takes the refinement only when every corner's SD gets smaller
                    better = got.any(-1) & np.all(~got | (new_sd < np.where(np.isfinite(sd), sd, np.inf)), axis=-1)
                    take = better[:, None] & got
                    lm = np.where(take[..., None], refined.corners, lm)
                    placement = np.where(take, refined.placement, placement).astype(object)
                    sd = np.where(take, new_sd, sd)
                    steps["refined_levels"] = [lv for lv, b in zip(levels, better, strict=True) if b]
            steps["source"] = (lm, placement, sd)
            if tgt is not None and "track" not in steps and np.isfinite(lm).any():
                steps["track"] = call(
                    autolandmarks.track_film, pixels[src], lm, pixels[tgt], levels=levels,
                    target_calibration=calibration[tgt], checkpoint=_scaled(checkpoint, 0.6 if detect else 0.4, 0.8),
                )  # fmt: skip
                if steps["track"] and "check" not in steps and tuple(levels)[-1:] == ("S1",):
                    # an independent check of the levels: detection on the target film itself
                    steps["check"] = call(
                        autolandmarks.detect_film, pixels[tgt], levels=levels,
                        calibration=calibration[tgt], checkpoint=_scaled(checkpoint, 0.8, 1.0),
                    )  # fmt: skip
            return steps

        return self.tasks.start("Auto", work, lambda steps: self._apply_auto(steps, source, target, detect))

    def _apply_auto(self, steps: dict[str, Any], source: str, target: str | None, detect: bool) -> None:
        source, target = steps.get("roles", (source, target))
        found = steps.get("detect")
        if detect and not found:
            self.window.show_error(
                f"Auto: {found.reason}. Place the corners of the {source} film (G: guided placement), "
                "then press Auto again to carry them over."
            )
            self.last_summary = [found.reason]
            return
        lm, placement, sd = steps["source"]
        marks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        current = self.session.film(source)
        if not (
            np.array_equal(lm, current.landmarks, equal_nan=True) and np.array_equal(placement, current.placement)
        ):
            marks[source] = (lm, placement, sd)
        tracked = steps.get("track")
        disagree: list[str] = []
        review: list[str] = []
        if tracked:
            if not steps.get("guarded"):
                # two independent methods must put each body at the same place, else it is not placed
                tracked = autolandmarks.check_tracking(
                    tracked, steps.get("check"), target=target,
                    source_facing=found.details.get("facing") if detect else None, unchecked_needs_review=detect,
                )  # fmt: skip
            status = tracked.details["cross_check"]["status"]
            disagree = [lv for lv in self.session.levels if status.get(lv) == "disagree"]
            review = list(tracked.details.get("review_reasons", []))
            marks[target] = (tracked.corners, tracked.placement, tracked.sd_mm)
        elif tracked is not None:
            self.window.show_error(f"Auto: tracking to the {target} film failed: {tracked.reason}")
        done = []
        if detect:
            done.append(f"detected {len(found.placed)} bodies on the {source} film")
        if steps.get("refined_levels"):
            done.append(f"refined {', '.join(steps['refined_levels'])}")
        if tracked:
            done.append(f"tracked {len(tracked.placed)} bodies to the {target} film")
        if not marks:
            self.window.statusBar().showMessage("Auto: nothing to change", 8000)
            return
        self.last_placed = self.session.merge_landmarks_of(marks, "Auto: " + ", ".join(done))
        self.last_summary = [*(found.summary() if found else []), *(tracked.summary() if tracked else [])]
        if tracked and tracked.failures:
            failed = {lv: why for lv, why in tracked.failures.items() if lv not in disagree}
            if failed:
                self._report(target, replace(tracked, failures=failed), "Auto track",
                             int(np.isfinite(tracked.corners).all(-1).sum()))  # fmt: skip
        if review:
            self.session.request_label_review("; ".join(review))
        elif detect:
            self._ask_labels(found, source)
        self.window.statusBar().showMessage("Auto: " + ", ".join(done), 8000)


def _pixels(film: Any) -> np.ndarray:
    """The film's pixels for the worker process (bone bright, float32)."""
    return autolandmarks.film_image(film)


def _mnemonic(text: str, key: str) -> str:
    """``text`` with ``&`` before the first ``key`` (case-insensitive) as its menu mnemonic."""
    i = text.lower().find(key.lower())
    return text if i < 0 else text[:i] + "&" + text[i:]


def install_auto_landmarks(window) -> QtAutoLandmarks:
    """Add the automatic landmark actions to a main window's Landmarks menu and toolbar."""
    return QtAutoLandmarks(window)
