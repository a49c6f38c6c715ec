"""A header layout shared by the files of one series: later files are read by checking it, not by walking them.

The slices of a series are usually written by one program: the same elements in the same order with
the same value lengths, so every element sits at the same byte offset in every file. After
:mod:`viewer.core.io.dicom_fast_header` has walked one file, its layout is remembered: where each
element's tag, VR and length bytes are and where its value is. A later file of the same size is checked
against it in one comparison of those structure bytes (and of the DICM magic and the transfer syntax and
character set values, which steer the reading). When all are equal, the walk would meet the same
elements at the same offsets, so the file's dataset is cut out at the known offsets without a walk; it
is the same dataset, element for element, as pydicom reads. Any difference and the file is walked as
usual: correctness never depends on the guess.
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter
from typing import NamedTuple

from pydicom import config
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import AllTransferSyntaxes
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

_UNDEFINED = 0xFFFFFFFF
_TRANSFER_SYNTAX, _CHARSET = 0x00020010, 0x00080005
_VR_LENGTH_32 = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_new_tuple = tuple.__new__
#: Attribute values a remembered dataset state may hold: shared as they are, or (containers) copied per file.
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, type(open))
_CONTAINERS = (dict, list)
#: Layouts kept (per file size: the few most recent), so a folder of several series keeps each one's.
_MAX_SIZES, _PER_SIZE = 64, 4
_KNOWN_SYNTAXES = frozenset(uid.encode("ascii") for uid in AllTransferSyntaxes)
_CUT = object()  # marks a value cut from the file (others are the same in every file: deferred or empty)


class _Elements:
    """One group of elements (file meta, or the data set) laid out as in the first file."""

    def __init__(self, raws: list[RawDataElement], implicit: bool):
        self.implicit = implicit
        self.tags = tuple(BaseTag(r.tag) for r in raws)
        self.vrs = tuple(r.VR for r in raws)
        self.lengths = tuple(r.length for r in raws)
        self.tells = tuple(r.value_tell for r in raws)
        #: where each element's tag/VR/length bytes are
        self.structure = [slice(r.value_tell - _header_length(r, implicit), r.value_tell) for r in raws]
        #: the value of each element: cut from the file, or the same in every file (None: deferred; empty)
        self.fixed = tuple(_CUT if r.value is not None and r.length else r.value for r in raws)
        self.values = [slice(r.value_tell, r.value_tell + r.length) if f is _CUT else slice(0, 0)
                       for r, f in zip(raws, self.fixed, strict=True)]
        self._cut = itemgetter(*self.values, slice(0, 0))  # (a spare item: a tuple even for one element)

    def end(self) -> int:
        """The byte after the last structure byte or cut value (all must be in the bytes read first)."""
        ends = [s.stop for s in self.structure]
        ends += [v.stop for v, f in zip(self.values, self.fixed, strict=True) if f is _CUT]
        return max(ends, default=0)

    def read(self, head: bytes) -> dict[BaseTag, RawDataElement]:
        """The elements of a file with this layout, as the walk gives them (unconverted RawDataElements)."""
        values = [v if f is _CUT else f for v, f in zip(self._cut(head), self.fixed)]  # noqa: B905 - spare item
        raws = map(_new_tuple, repeat(RawDataElement),
                   zip(self.tags, self.vrs, self.lengths, values, self.tells,  # noqa: B905 - equal lengths
                       repeat(self.implicit), repeat(True), repeat(True), repeat(False)))
        return dict(zip(self.tags, raws))  # noqa: B905


def _header_length(raw: RawDataElement, implicit: bool) -> int:
    """Bytes of tag, VR and length before the value (8, or 12 for explicit VRs with a 32-bit length)."""
    return 12 if not implicit and raw.VR in _VR_LENGTH_32 else 8


#: A file dataset's attributes that are the file's own: set for each file read by a layout.
_PER_FILE = ("_dict", "file_meta", "filename", "preamble", "timestamp")


def _copyable(value: object) -> bool:
    """True for an immutable value, or a container of immutable values (copied for each file)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, _IMMUTABLE) and not isinstance(v, tuple) for v in value)
    return isinstance(value, _IMMUTABLE)


def _state(obj: object, skip: tuple[str, ...] = ()) -> dict | None:
    """``obj``'s attributes but ``skip``, or None when one is of a kind this module does not copy."""
    state = {k: v for k, v in obj.__dict__.items() if k not in skip}
    return state if all(_copyable(v) for v in state.values()) else None


def _restore(cls: type, state: dict) -> object:
    """An object of class ``cls`` with ``state``'s attributes (containers copied), made without its constructor."""
    obj = cls.__new__(cls)
    obj.__dict__.update({k: v.copy() if isinstance(v, _CONTAINERS) else v for k, v in state.items()})
    return obj


class _Converted:
    """A dataset's state and the elements pydicom had converted in it (the rest stay raw, as walked)."""

    def __init__(self, ds: Dataset):
        self.state = _state(ds, _PER_FILE)
        self.elements = {tag: _state(e) for tag, e in ds._dict.items() if isinstance(e, DataElement)}  # noqa: SLF001
        self.complete = self.state is not None and None not in self.elements.values()

    def restore(self, cls: type[Dataset], elements: dict[BaseTag, RawDataElement]) -> Dataset:
        """A dataset of class ``cls`` in this state holding ``elements`` (the converted ones as converted)."""
        ds = _restore(cls, self.state)
        elements.update({tag: _restore(DataElement, state) for tag, state in self.elements.items()})
        ds.__dict__["_dict"] = elements
        return ds


def file_dataset(path: str, preamble: bytes, meta: dict[BaseTag, RawDataElement],
                 data: dict[BaseTag, RawDataElement], implicit: bool) -> FileDataset:
    """The dataset pydicom's reader makes of a file's walked elements (as its ``read_partial`` does)."""
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    ds = FileDataset(path, data, preamble, file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, ds._character_set)  # noqa: SLF001 - as pydicom's read_partial
    return ds


class Walked(NamedTuple):
    """What the walk of one file found: its layout is made of it when another file of its size comes."""

    head: bytes  # the file's first bytes, as read
    size: int
    defer_size: int
    meta: list[RawDataElement]
    data: list[RawDataElement]
    implicit: bool
    none_as_empty: bool  # pydicom's setting that gave the empty values


class HeaderLayout:
    """The layout of one walked file: :meth:`dataset` reads another file of the same layout."""

    def __init__(self, walked: Walked, groups: tuple[_Elements, _Elements], states: tuple[_Converted, _Converted]):
        self.meta, self.data = groups
        self.meta_state, self.data_state = states
        self.none_as_empty = walked.none_as_empty
        values = {t: v for g in groups for t, v in zip(g.tags, g.values)}  # noqa: B905
        steering = [values[t] for t in (_TRANSFER_SYNTAX, _CHARSET) if t in values]
        self._structure = itemgetter(slice(128, 132), *self.meta.structure, *self.data.structure, *steering)
        self._expected = self._structure(walked.head)

    @classmethod
    def of(cls, walked: Walked) -> HeaderLayout | None:
        """The layout of a walked file; None when other files could not be read by it (undefined lengths,
        elements or values past the bytes read first, dataset attributes it would not copy).

        Its states are those of the dataset made of its elements as the walk makes it, with a known
        transfer syntax converted, as every reader of a file does first (so files read by the layout have
        it converted, as the character set); an unknown one stays raw (converting it may warn, and must
        do so where pydicom would).
        """
        raws = walked.meta + walked.data
        if not walked.data or not all(isinstance(r, RawDataElement) and r.length != _UNDEFINED for r in raws):
            return None
        groups = _Elements(walked.meta, False), _Elements(walked.data, walked.implicit)
        if max(g.end() for g in groups) > len(walked.head):
            return None
        ds = file_dataset("", walked.head[:128], {r.tag: r for r in walked.meta}, {r.tag: r for r in walked.data},
                          walked.implicit)
        syntax = ds.file_meta._dict.get(_TRANSFER_SYNTAX)  # noqa: SLF001 - raw until converted
        if isinstance(syntax, RawDataElement) and (syntax.value or b"").rstrip(b"\0 ") in _KNOWN_SYNTAXES:
            ds.file_meta.get(_TRANSFER_SYNTAX)
        states = _Converted(ds.file_meta), _Converted(ds)
        return cls(walked, groups, states) if all(s.complete for s in states) else None

    def dataset(self, path: str, head: bytes, mtime: float) -> FileDataset | None:
        """The dataset of the file at ``path`` (first bytes ``head``) if it has this layout, else None."""
        if self._structure(head) != self._expected or config.use_none_as_empty_text_VR_value != self.none_as_empty:
            return None
        ds = self.data_state.restore(FileDataset, self.data.read(head))
        file_meta = self.meta_state.restore(FileMetaDataset, self.meta.read(head))
        ds.__dict__.update(file_meta=file_meta, filename=path, preamble=head[:128], timestamp=mtime)
        return ds


#: By (file size, defer size): the layouts of files walked (most recent first), each made when needed.
_layouts: dict[tuple[int, int], list[HeaderLayout | Walked | None]] = {}


def read_with_layout(path: str, head: bytes, size: int, mtime: float, defer_size: int) -> FileDataset | None:
    """The dataset of the file at ``path`` by the layout of a file walked before, or None when none fits it."""
    entries = _layouts.get((size, defer_size), [])
    for i, entry in enumerate(entries):
        if isinstance(entry, Walked):  # the second file of its size: worth making the layout
            entry = entries[i] = HeaderLayout.of(entry)
        ds = entry.dataset(path, head, mtime) if entry is not None else None
        if ds is not None:
            return ds
    return None


def remember(walked: Walked) -> None:
    """Keep what the walk of a file found, for the next files of its size (the most recent first)."""
    key = (walked.size, walked.defer_size)
    if key not in _layouts and len(_layouts) >= _MAX_SIZES:
        _layouts.clear()
    _layouts[key] = [walked, *_layouts.get(key, ())][:_PER_SIZE]
