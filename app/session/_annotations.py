"""The reader's rulers and angles on each film (:mod:`app.annotations`): add, move,
delete, each an undoable edit; their values with the film's calibration in force."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from app.annotations import Annotation, AnnotationValue, labelled, measure_annotation
from app.errors import UserError
from app.session._model import FilmState


class AnnotationsMixin:
    """Free rulers and angles of a :class:`~app.session.Session` (kept per film: they
    follow their film when the films are swapped)."""

    _films: dict[str, FilmState | None]

    def annotations(self, role: str) -> tuple[Annotation, ...]:
        """The annotations of the ``role`` film, in the order they were drawn."""
        state = self._films.get(role)
        return () if state is None else tuple(state.annotations)

    def annotation_values(self, role: str) -> list[tuple[str, Annotation, AnnotationValue]]:
        """``(label, annotation, value)`` per annotation of ``role`` (``R1 … A1 …``), with the
        film's calibration in force (a manual line, else the DICOM's)."""
        state = self._films.get(role)
        if state is None:
            return []
        return [(label, a, measure_annotation(a, state.calibration)) for label, a in labelled(state.annotations)]

    def add_annotation(self, role: str, kind: str, points_px: Sequence[Sequence[float]]) -> int:
        """Draw a ruler (2 points) or an angle (3 points, or 4: two lines) on ``role``.

        One undo step.  Returns its index in :meth:`annotations`.

        Raises
        ------
        UserError
            No such film, or the points do not make a ``kind``.
        """
        self._require(role)  # type: ignore[attr-defined]
        try:
            annotation = Annotation(kind, tuple((float(p[0]), float(p[1])) for p in points_px))
        except (ValueError, TypeError, IndexError) as exc:
            raise UserError(f"{kind} on the {role} film: {exc}") from None

        def apply(films: dict[str, FilmState | None]) -> None:
            films[role].annotations = (*films[role].annotations, annotation)

        self._edit(f"Add {kind}", apply, roles=(role,))  # type: ignore[attr-defined]
        return len(self.annotations(role)) - 1

    def remove_annotation(self, role: str, index: int) -> None:
        """Delete annotation ``index`` of ``role`` (one undo step)."""
        state = self._require(role)  # type: ignore[attr-defined]
        if not 0 <= index < len(state.annotations):
            raise UserError(f"no annotation {index + 1} on the {role} film")
        kind = state.annotations[index].kind

        def apply(films: dict[str, FilmState | None]) -> None:
            items = list(films[role].annotations)
            del items[index]
            films[role].annotations = tuple(items)

        self._edit(f"Delete {kind}", apply, roles=(role,))  # type: ignore[attr-defined]

    def move_annotation_point(
        self, role: str, index: int, point: int, xy: Sequence[float], *, merge_id: Hashable | None = None
    ) -> None:
        """Move one point of an annotation; the moves of one drag (same ``merge_id``) are one undo step."""
        state = self._require(role)  # type: ignore[attr-defined]
        if not 0 <= index < len(state.annotations):
            raise UserError(f"no annotation {index + 1} on the {role} film")
        try:
            moved = state.annotations[index].moved(point, (float(xy[0]), float(xy[1])))
        except (ValueError, IndexError) as exc:
            raise UserError(f"annotation {index + 1} on the {role} film: {exc}") from None

        def apply(films: dict[str, FilmState | None]) -> None:
            items = list(films[role].annotations)
            items[index] = moved
            films[role].annotations = tuple(items)

        self._edit(f"Move {moved.kind}", apply, roles=(role,), merge_id=merge_id)  # type: ignore[attr-defined]
