"""Compare two segmentations of one image (two models, or model vs hand): per-label Dice and agreement."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Agreement map codes.
NEITHER, BOTH, ONLY_A, ONLY_B = 0, 1, 2, 3


def dice_table(a: np.ndarray, b: np.ndarray, names: dict[int, str] | None = None) -> list[dict]:
    """Per label present in either map: Dice, voxels in A, in B, and in both."""
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    names = names or {}
    rows = []
    for label in sorted((set(np.unique(a)) | set(np.unique(b))) - {0}):
        ma, mb = a == label, b == label
        both = int((ma & mb).sum())
        na, nb = int(ma.sum()), int(mb.sum())
        rows.append({"label": int(label), "name": names.get(int(label), f"label_{label}"),
                     "dice": 2 * both / (na + nb) if na + nb else 1.0, "voxels_a": na, "voxels_b": nb,
                     "voxels_both": both})
    return rows


def agreement_map(a: np.ndarray, b: np.ndarray, label: int | None = None) -> np.ndarray:
    """uint8 map: BOTH where A and B have the same structure (``label``, or any of them), ONLY_A where A
    has it and B has not (also where B has a different structure there), ONLY_B where only B has one,
    else NEITHER. ``a`` and ``b`` must use the same label ids (see :func:`compare_labels`)."""
    if label is None:
        both, ma, mb = (a == b) & (a > 0), a > 0, b > 0
    else:
        ma, mb = a == label, b == label
        both = ma & mb
    out = np.zeros(a.shape, np.uint8)
    out[mb & ~ma] = ONLY_B
    out[ma & ~both] = ONLY_A
    out[both] = BOTH
    return out


def _key(name: str) -> str:
    """Label names compared case-blind, with spaces, dashes and underscores alike ("Kidney left" = "kidney_left")."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


@dataclass
class Comparison:
    """Two label maps in A's label ids, their Dice rows and the structures only one side names."""

    a: np.ndarray  # A, only the labels compared
    b: np.ndarray  # B relabelled to A's ids, only the labels compared
    names: dict[int, str]
    rows: list[dict]
    by_name: bool  # labels matched by name (both sides named them), else by number
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def _relabel(array: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``array`` with each id replaced by ``mapping[id]`` (0 for ids not in the mapping)."""
    lut = np.zeros(int(array.max(initial=0)) + 1, np.uint16)
    for src, dst in mapping.items():
        if src < lut.size:
            lut[src] = dst
    out = lut[array]
    return out.astype(np.uint8) if int(out.max(initial=0)) < 256 else out


def compare_labels(a: np.ndarray, b: np.ndarray, names_a: dict[int, str] | None,
                   names_b: dict[int, str] | None) -> Comparison:
    """Compare label maps ``a`` and ``b`` of one grid. When both sides name their labels, structures are
    matched by name (B's ids mapped to A's; structures present in one map whose name the other side lacks
    are listed in ``only_a`` / ``only_b`` and left out of the Dice rows and agreement); otherwise labels
    are matched by number."""
    names_a = {int(k): v for k, v in (names_a or {}).items() if int(k)}
    names_b = {int(k): v for k, v in (names_b or {}).items() if int(k)}
    if not (names_a and names_b):
        names = {**names_b, **names_a}
        return Comparison(a, b, names, dice_table(a, b, names), False)
    ids_a = {}
    for label, name in sorted(names_a.items()):
        ids_a.setdefault(_key(name), label)
    b_to_a = {}
    for label, name in sorted(names_b.items()):
        if _key(name) in ids_a:
            b_to_a.setdefault(label, ids_a[_key(name)])
    matched = set(b_to_a.values())
    names = {label: names_a[label] for label in sorted(matched)}
    a_kept = _relabel(a, {label: label for label in matched})
    b_in_a = _relabel(b, b_to_a)
    keys_b = {_key(n) for n in names_b.values()}

    def unmatched(array, side_names, other_keys) -> list[str]:
        present = set(np.unique(array).tolist())
        return [n for label, n in sorted(side_names.items()) if label in present and _key(n) not in other_keys]

    return Comparison(a_kept, b_in_a, names, dice_table(a_kept, b_in_a, names), True,
                      only_a=unmatched(a, names_a, keys_b), only_b=unmatched(b, names_b, ids_a))
