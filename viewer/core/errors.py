"""Typed errors: each names the file (when there is one) and the problem, in one line."""

from __future__ import annotations

from os import PathLike


class RadviewError(Exception):
    """Base of every error radview reports to a user.

    ``str(err)`` is a single line ``"<path>: <problem>"`` (or just the problem when no file is
    involved), suitable for a CLI message or a GUI dialog.
    """

    def __init__(self, problem: str, path: str | PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class InputError(RadviewError):
    """A file or folder cannot be used as input (base of the reading errors)."""


class EmptyInputError(InputError):
    """The path holds no readable image (empty folder, no DICOM images)."""


class UnsupportedFormatError(InputError):
    """The file is not in a format radview reads or writes."""


class CorruptFileError(InputError):
    """The file is truncated or its content cannot be decoded."""


class DamagedHeaderError(CorruptFileError):
    """A header element needed to place or decode the image holds an invalid value (e.g. a DS that is
    not a number, Rows of 0)."""


class NotAnImageError(InputError):
    """A DICOM object without pixel data (RTSTRUCT, SR, RTPLAN, ...)."""


class NotAVolumeObjectError(UnsupportedFormatError):
    """A DICOM object with pixel data that is not an image series (a SEG, an RT object, ...); the message
    says how to open it instead."""


class ColourImageError(InputError):
    """An operation that needs scalar (greyscale) values was asked of a colour (RGB) image."""


class MixedSeriesError(InputError):
    """The input holds several series; ``series`` lists them (see ``viewer.core.io.scan``)."""

    def __init__(self, problem: str, path=None, series: list | None = None):
        super().__init__(problem, path)
        self.series = list(series or [])


class GeometryError(InputError):
    """Slices cannot form one volume (mixed orientations, inconsistent sizes, ...)."""


class LabelMapError(RadviewError):
    """A label map does not fit its image or its label table."""


class ConfigError(InputError):
    """A configuration file (e.g. a training YAML) cannot be read or holds an unknown key or a bad value."""


class ModelError(RadviewError):
    """A model folder or file is broken or does not fit the open study."""


class JournalError(RadviewError):
    """The edit journal or a saved session cannot be read."""


class ResourceLimitError(RadviewError):
    """An operation would need more memory than allowed."""


class Cancelled(RadviewError):
    """A long operation was cancelled by the user; nothing partial was kept."""

    def __init__(self, problem: str = "cancelled", path=None):
        super().__init__(problem, path)


class RegistrationError(RadviewError):
    """Two images cannot be registered (no overlap, no shared information) or a transform file is unusable."""
