"""Output names of a cohort's inputs: <input name without extension>, parent folders prefixed where names collide."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from viewer.core.errors import InputError
from viewer.core.io.image_files import image_extension

#: Extensions dropped from an input's name besides the image formats SimpleITK reads (a single DICOM file).
DICOM_EXTENSIONS = (".dcm", ".dicom")


def input_stem(path: Path) -> str:
    """``path``'s name without its image extension: ``ct.nii.gz`` -> ``ct``; a DICOM folder keeps its name."""
    ext = image_extension(path) or next((e for e in DICOM_EXTENSIONS if path.name.lower().endswith(e)), None)
    return path.name[: -len(ext)] if ext and len(path.name) > len(ext) else path.name


def output_names(inputs: list[Path]) -> list[str]:
    """One distinct output name per input, in order: the input's stem (input_stem); inputs whose names
    collide (``p1/ct.nii.gz`` and ``p2/ct.nii.gz``, compared case-insensitively for case-insensitive file
    systems) are prefixed with as many parent folder names as it takes, joined by ``_``: ``p1_ct``, ``p2_ct``.
    Raises InputError for an input given twice."""
    paths = [Path(os.path.abspath(p)) for p in inputs]
    seen: dict[Path, int] = {}
    for n, p in enumerate(paths):
        if p in seen:
            raise InputError(f"given twice (inputs {seen[p] + 1} and {n + 1})", inputs[n])
        seen[p] = n
    depth = [0] * len(paths)
    while True:
        names = ["_".join([*p.parent.parts[len(p.parent.parts) - d:], input_stem(p)]) if d else input_stem(p)
                 for p, d in zip(paths, depth, strict=True)]
        groups: dict[str, list[int]] = defaultdict(list)
        for n, name in enumerate(names):
            groups[name.casefold()].append(n)
        clashes = [n for group in groups.values() if len(group) > 1 for n in group]
        if not clashes:
            return names
        for n in clashes:
            depth[n] += 1
            if depth[n] > len(paths[n].parent.parts) - 1:  # no folder name left to tell it apart
                raise InputError(f"no distinct output name (it would be {names[n]!r} like another input)", inputs[n])
