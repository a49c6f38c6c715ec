"""Crash recovery flow: the segmentations a crashed session journalled, grouped by the image each must re-open.

The GUI asks the question and opens the images (in the background); everything else is here, so the flow
is tested without Qt::

    recovery = Recovery.find(session)
    tell(recovery.problems)                     # unreadable journals (set aside), damaged records skipped
    if recovery and ask(recovery.question()):
        for source in recovery.images():          # the first segmentation's image comes last (shown)
            segs, errors = recovery.restore(source, load(source))
    elif recovery:
        recovery.decline()
"""

from __future__ import annotations

from viewer.core.errors import RadviewError
from viewer.core.labels import Segmentation
from viewer.core.volume import Volume


class Recovery:
    """Journalled segmentations of crashed sessions, waiting for their images to be re-opened."""

    def __init__(self, session, recovered: list[Segmentation]):
        self.session = session
        self.segmentations = list(recovered)
        #: what the user must be told: journals that could not be read (set aside) and damaged records skipped
        self.problems = [str(err) for err in session.recovery_errors] + list(session.recovery_warnings)
        self._pending: dict[str, list[Segmentation]] = {}
        for seg in self.segmentations:
            self._pending.setdefault(seg.source, []).append(seg)

    @classmethod
    def find(cls, session) -> Recovery:
        """What ``session.recover()`` finds, keeping the segmentations whose journal names their image (the
        others cannot be placed; their journals stay for :meth:`decline` or a later start)."""
        return cls(session, [seg for seg in session.recover() if seg.source])

    def __bool__(self) -> bool:
        return bool(self._pending)

    def question(self) -> str:
        """The yes/no question to put to the user."""
        names = ", ".join(f"'{seg.name}'" for seg in self.segmentations)
        return f"radview was not closed cleanly. Recover {names}?"

    def images(self) -> list[str]:
        """Source paths of the images still to re-open, in opening order: the first segmentation's image is
        opened last, so it is the one left on screen."""
        return list(reversed(self._pending))

    def restore(self, source: str, image: Volume) -> tuple[list[Segmentation], list[RadviewError]]:
        """Adopt the segmentations recovered on ``source`` into the session on its re-opened ``image``.

        Returns (adopted segmentations, one error per segmentation that does not fit the image); each adopted
        one is journalled anew and its old journal marked handled, a misfit keeps its journal.
        """
        adopted, errors = [], []
        for seg in self._pending.pop(source, []):
            try:
                adopted.append(self.session.adopt_recovered(image, seg))
            except RadviewError as err:
                errors.append(err)
        return adopted, errors

    def skip(self, source: str) -> None:
        """Give up on ``source`` (it cannot be opened now): its journals stay and are offered at the next start."""
        self._pending.pop(source, None)

    def decline(self) -> None:
        """The user declined: every unclosed journal is marked handled and not offered again."""
        self.session.discard_recovery()
        self._pending.clear()
