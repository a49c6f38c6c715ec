"""Is a NIfTI file whole? ITK's NIfTI reader fills the missing end of a truncated .nii or .nii.gz with zeros and
reports success, so a cut download would open as an image whose lower part is 0 (and be segmented, measured...).

``check_nifti_length(path)`` reads the header (NIfTI-1 or NIfTI-2, either byte order) for where the voxels start
and how many bytes they take, and compares that with the file: its size (.nii), or the gzip trailer's length of the
decompressed data (.nii.gz; when that disagrees, e.g. a multi-member gzip, the stream is decompressed and counted).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from viewer.core.errors import CorruptFileError

_CHUNK = 1 << 20


def _data_end(header: bytes, path: Path) -> int:
    """Bytes a NIfTI file's decompressed content must hold: vox_offset + the voxel data."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:  # NIfTI-1
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:  # NIfTI-2
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dims = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        raise CorruptFileError("not a NIfTI header (sizeof_hdr is neither 348 nor 540)", path)
    if not 1 <= dims[0] <= 7 or bitpix <= 0:
        raise CorruptFileError(f"NIfTI header holds dim[0] = {dims[0]}, bitpix = {bitpix}", path)
    voxels = 1
    for n in dims[1:dims[0] + 1]:
        voxels *= max(int(n), 1)
    return offset + voxels * bitpix // 8


def _gzip_length(path: Path) -> int | None:
    """Decompressed bytes of a gzip file, or None when its stream ends early (a truncated file)."""
    total, data = 0, path.read_bytes()
    while data:
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        for start in range(0, len(data), _CHUNK):
            total += len(inflate.decompress(data[start:start + _CHUNK]))
            if inflate.eof:
                break
        if not inflate.eof:
            return None
        data = inflate.unused_data  # the next gzip member, if any
    return total


def check_nifti_length(path: Path) -> None:
    """Raise CorruptFileError naming ``path`` when the NIfTI file holds fewer bytes than its header describes."""
    path = Path(path)
    with open(path, "rb") as f:
        packed = f.read(2) == b"\x1f\x8b"  # gzip's magic, whatever the name says
    try:
        with (gzip.open(path, "rb") if packed else open(path, "rb")) as f:
            header = f.read(540)
    except (OSError, EOFError) as err:
        raise CorruptFileError(f"cannot read the NIfTI header ({err})", path) from err
    need = _data_end(header, path)
    if not packed:
        have = path.stat().st_size
    else:
        with open(path, "rb") as f:
            f.seek(-4, 2)
            if struct.unpack("<I", f.read(4))[0] == need % 2 ** 32:  # gzip trailer: the length mod 2^32
                return
        have = _gzip_length(path)
        if have is None:
            raise CorruptFileError(f"the file is truncated: its gzip stream ends early (the header describes "
                                   f"{need} bytes)", path)
    if have < need:
        raise CorruptFileError(f"the file is truncated: it holds {have} of the {need} bytes its header describes",
                               path)
