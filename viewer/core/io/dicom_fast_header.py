"""One-pass byte walk of a little-endian DICOM header, giving the dataset pydicom's dcmread would give.

Reading a folder's headers is the cost of opening a series: pydicom's generic reader does several
file reads and function calls per element. This walker reads the file's first bytes once and cuts
the top-level elements out of that buffer with :func:`struct.unpack_from`, producing the same
:class:`pydicom.dataset.FileDataset` as ``pydicom.dcmread(path, defer_size=...)``: every top-level
element as an unconverted RawDataElement (so conversion stays lazy and pydicom's rules apply
unchanged), values longer than ``defer_size`` left on disk (pixel data: only its offset is kept).

It handles files with a preamble and file meta in a little-endian transfer syntax (implicit VR,
explicit VR, and the encapsulated syntaxes, which are explicit VR little endian). Undefined-length
sequences and encapsulated pixel data are handed to pydicom's own readers at their offset. For
anything else (no preamble, big endian, deflate, a command set group, VRs it does not know, a
header that runs past the end of the file) it returns None and the caller uses pydicom itself,
which then raises or warns exactly as before.

Each walked file's layout is remembered (:mod:`viewer.core.io.dicom_header_layout`): the next files of
a series, when they check out to have the same layout, are cut out at the known offsets without a walk.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import FileDataset
from pydicom.filereader import ENCODED_VR, read_sequence
from pydicom.fileutil import read_undefined_length_value
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string

from viewer.core.io.dicom_header_layout import Walked, file_dataset, read_with_layout, remember

log = logging.getLogger(__name__)

#: Bytes read at once; a typical CT/MR header (with private tags) is 2-12 kB.
CHUNK = 16384
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_TAG_LENGTH = struct.Struct("<HHL").unpack_from  # implicit VR: group, element, 4-byte length
_TAG_VR_LENGTH = struct.Struct("<HH2sH").unpack_from  # explicit VR: group, element, VR, 2-byte length
_LENGTH32 = struct.Struct("<L").unpack_from
_VR_LENGTH_32 = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_VR_NAMES = {vr: vr.decode("ascii") for vr in ENCODED_VR}
#: RawDataElement is a named tuple; made with tuple.__new__ (a C call, twice as fast as its Python
#: constructor) when its fields are the ones this module fills: (..., is_raw=True, is_buffered=False).
_RAW_FIELDS = ("tag", "VR", "length", "value", "value_tell", "is_implicit_VR", "is_little_endian", "is_raw",
               "is_buffered")
_LAYOUT_KNOWN = RawDataElement._fields == _RAW_FIELDS
_new_tuple = tuple.__new__


class _Unhandled(Exception):
    """The file needs pydicom's general reader (see the module docstring)."""


class _Buffer:
    """A window of the file's bytes (at first ``head``, its first bytes), moved forward as the walk needs."""

    def __init__(self, f: BinaryIO, size: int, head: bytes):
        self.f, self.size = f, size
        self.base, self.data = 0, head

    def at(self, pos: int, n: int) -> int:
        """The index in ``data`` of file offset ``pos``, after making ``n`` bytes from there available."""
        if pos + n > self.size:
            raise _Unhandled(f"header runs past the end of the file at byte {pos}")
        if pos < self.base or pos + n > self.base + len(self.data):
            self.f.seek(pos)
            self.base, self.data = pos, self.f.read(max(n, CHUNK))
        return pos - self.base


class _Walk:
    """The walk over one file: its buffer, position and the character set met so far."""

    def __init__(self, f: BinaryIO, size: int, head: bytes, defer_size: int):
        self.buf = _Buffer(f, size, head)
        self.pos = 0
        self.defer_size = defer_size
        self.encoding: str | list[str] = default_encoding

    def elements(self, implicit: bool, group: int | None = None) -> dict[BaseTag, RawDataElement | DataElement]:
        """Top-level elements from ``pos`` to the end of the file (or, with ``group``, to the end of that group)."""
        out: dict[BaseTag, RawDataElement | DataElement] = {}
        buf, size, defer_size = self.buf, self.buf.size, self.defer_size
        pos = self.pos
        data, base = buf.data, buf.base
        while size - pos >= 8:  # pydicom stops silently on fewer than 8 trailing bytes, so do we
            i = pos - base
            if i < 0 or i + 12 > len(data):
                i = buf.at(pos, min(12, size - pos))
                data, base = buf.data, buf.base
            if implicit:
                g, e, length = _TAG_LENGTH(data, i)
                vr, value_tell = None, pos + 8
            else:
                g, e, raw_vr, length = _TAG_VR_LENGTH(data, i)
                if g != group and group is not None:
                    break
                vr = _VR_NAMES.get(raw_vr)
                if vr is None:
                    raise _Unhandled(f"unknown VR {raw_vr!r} at byte {pos}")
                value_tell = pos + 8
                if vr in _VR_LENGTH_32:  # the window holds 12 bytes from pos unless the file ends sooner
                    if i + 12 > len(data):
                        raise _Unhandled(f"header runs past the end of the file at byte {pos}")
                    length = _LENGTH32(data, i + 8)[0]
                    value_tell = pos + 12
            if g != group and group is not None:
                break
            if g == 0xFFFE or (g == 0 and group is None):
                raise _Unhandled(f"delimiter or command element ({g:04X},{e:04X}) at top level")
            tag = g << 16 | e
            if length == _UNDEFINED:
                out[BaseTag(tag)], pos = self._undefined_length(BaseTag(tag), vr, value_tell, implicit)
                data, base = buf.data, buf.base
                continue
            if length > defer_size and tag != _CHARSET:
                value = None
            elif length == 0:
                value = empty_value_for_VR(vr, raw=True)
            else:
                j = value_tell - base
                if j + length > len(data):
                    j = buf.at(value_tell, length)
                    data, base = buf.data, buf.base
                value = data[j:j + length]
                if tag == _CHARSET:
                    self.encoding = convert_encodings(convert_string(value, True))
            key = BaseTag(tag)
            out[key] = _new_tuple(RawDataElement, (key, vr, length, value, value_tell, implicit, True, True, False))
            pos = value_tell + length
        self.pos = pos
        return out

    def _undefined_length(
        self, tag: BaseTag, vr: str | None, value_tell: int, implicit: bool
    ) -> tuple[RawDataElement | DataElement, int]:
        """An undefined-length element read by pydicom's own readers, and the offset after it."""
        if vr is None:
            vr = dictionary_VR(tag) if pydicom.datadict.dictionary_has_tag(tag) else None
        f = self.buf.f
        f.seek(value_tell)
        if vr == "SQ":
            seq = read_sequence(f, implicit, True, _UNDEFINED, self.encoding)
            elem: RawDataElement | DataElement = DataElement(tag, vr, seq, value_tell, is_undefined_length=True)
        elif vr in ("OB", "OW") and not implicit:  # encapsulated pixel data and the like
            value = read_undefined_length_value(f, True, SequenceDelimiterTag, self.defer_size)
            elem = RawDataElement(tag, vr, _UNDEFINED, value, value_tell, implicit, True)
        else:
            raise _Unhandled(f"undefined length {vr} element {tag}")
        end = f.tell()
        self.buf.base, self.buf.data = end, f.read(CHUNK)
        return elem, end


def _first_vr_is_explicit(walk: _Walk) -> bool:
    """Whether the first element at ``walk.pos`` carries a VR (two capital letters), as pydicom tests it."""
    i = walk.buf.at(walk.pos, 6)
    a, b = walk.buf.data[i + 4], walk.buf.data[i + 5]
    return 0x40 < a < 0x5B and 0x40 < b < 0x5B


def _transfer_syntax(meta: dict) -> str:
    raw = meta.get(BaseTag(0x00020010))
    if not isinstance(raw, RawDataElement) or not raw.value:
        raise _Unhandled("no transfer syntax in the file meta")
    return raw.value.decode("ascii", "replace").strip(" \x00")


def _walk_file(path: str, f: BinaryIO, head: bytes, size: int, defer_size: int) -> FileDataset:
    """The dataset of the file ``f`` (``head``: its first bytes), walked; its layout is remembered."""
    walk = _Walk(f, size, head, defer_size)
    preamble = walk.buf.data[:128]
    if size < 140 or walk.buf.data[128:132] != b"DICM":
        raise _Unhandled("no preamble")
    walk.pos = 132
    if not _first_vr_is_explicit(walk):
        raise _Unhandled("implicit VR file meta")
    meta = walk.elements(implicit=False, group=0x0002)
    syntax = _transfer_syntax(meta)
    if syntax in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian) or \
            syntax in pydicom.uid.PrivateTransferSyntaxes:
        raise _Unhandled(f"transfer syntax {syntax}")
    implicit = syntax == ImplicitVRLittleEndian
    if size - walk.pos < 8 or _first_vr_is_explicit(walk) == implicit:
        raise _Unhandled("empty data set or VR encoding differs from the transfer syntax")
    elements = walk.elements(implicit)

    remember(Walked(head, size, defer_size, list(meta.values()), list(elements.values()), implicit,
                    pydicom.config.use_none_as_empty_text_VR_value))
    return file_dataset(path, preamble, meta, elements, implicit)


def read_header_fast(path: Path, defer_size: int) -> FileDataset | None:
    """The dataset ``pydicom.dcmread(path, defer_size=defer_size)`` returns, or None when the file is
    outside this walker's scope or anything about it is unexpected (the caller then uses pydicom)."""
    if not _LAYOUT_KNOWN:  # a pydicom whose RawDataElement changed: its own reader is always right
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            stat = os.fstat(fd)
            head = os.pread(fd, CHUNK, 0)
            ds = read_with_layout(str(path), head, stat.st_size, stat.st_mtime, defer_size)
            if ds is not None:
                return ds
            with open(fd, "rb", closefd=False) as f:
                return _walk_file(str(path), f, head, stat.st_size, defer_size)
        finally:
            os.close(fd)
    except _Unhandled as why:
        log.debug("%s: general DICOM reader used (%s)", path, why)
    except Exception as err:  # a damaged file: pydicom's reader decides what it is and says why
        log.debug("%s: general DICOM reader used (%s: %s)", path, type(err).__name__, err)
    return None
