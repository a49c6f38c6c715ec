"""SNOMED CT codes (category, type, laterality) for segment names, from pydicom's DICOM code dictionary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: (code value, meaning) of the segmentation property categories used (DICOM CID 7150).
ANATOMICAL_STRUCTURE = ("91723000", "Anatomical Structure")
TISSUE = ("85756007", "Tissue")
ABNORMAL_STRUCTURE = ("49755003", "Morphologically Abnormal Structure")
#: Laterality qualifiers (DICOM CID 244).
LEFT = ("7771000", "Left")
RIGHT = ("24028007", "Right")

#: Context groups whose members may name a segment: anatomic structures (7151, 7192, 8134),
#: lesions / abnormal structures (7159, 7194) and tissues (7166).
_SEGMENT_CIDS = frozenset({7151, 7159, 7166, 7192, 7194, 8134})
_LESION_CIDS = frozenset({7159, 7194})
_TISSUE_CIDS = frozenset({7166})

#: Words in common label tables (TotalSegmentator, Slicer, nnU-Net) -> pydicom concept keyword.
SYNONYMS = {
    "vertebrae": "Vertebra",
    "spine": "Vertebra",
    "kidneys": "Kidney",
    "lungs": "Lung",
    "lung upper lobe": "UpperLobeOfLung",
    "upper lobe": "UpperLobeOfLung",
    "lung lower lobe": "LowerLobeOfLung",
    "lower lobe": "LowerLobeOfLung",
    "lung middle lobe": "MiddleLobeOfRightLung",
    "middle lobe": "MiddleLobeOfRightLung",
    "urinary bladder": "Bladder",
    "bladder": "Bladder",
    "thyroid gland": "Thyroid",
    "small bowel": "SmallIntestine",
    "bowel": "SmallIntestine",
    "oesophagus": "Esophagus",
    "ivc": "InferiorVenaCava",
    "tumour": "Mass",
    "tumor": "Mass",
    "lesion": "Mass",
    "mass": "Mass",
    "metastasis": "Mass",
    "kidney cyst": "Cyst",
    "heart myocardium": "Heart",
    "brachiocephalic trunk": "BrachiocephalicTrunk",
    "clavicula": "Clavicle",
    "costal cartilages": "CostalCartilage",
    "iliac vena": "CommonIliacVein",
    "fat": "Fat",
    "adipose": "Fat",
    "muscle": "Muscle",
    "bone": "Bone",
}
#: Concepts that are tissues or abnormal structures whatever context groups list them.
TISSUE_KEYWORDS = frozenset({"Fat", "Muscle", "Bone", "SoftTissue", "Skin"})
ABNORMAL_KEYWORDS = frozenset({"Mass", "Tumor", "Cyst", "Nodule", "Lesion"})


@dataclass(frozen=True)
class SegmentCodes:
    """Coded description of one segment: category, type and optional laterality, as (value, meaning)."""

    category: tuple[str, str]
    type: tuple[str, str]
    laterality: tuple[str, str] | None = None
    known: bool = True
    #: for abnormal structures named with an organ ('liver lesion'): that organ's (value, meaning).
    region: tuple[str, str] | None = None


@lru_cache(maxsize=1)
def _sct() -> dict:
    from pydicom.sr._concepts_dict import concepts

    return concepts["SCT"]


def _concept(keyword: str) -> tuple[str, str, frozenset] | None:
    """(code, meaning, context groups) of a pydicom SCT keyword, or None."""
    entry = _sct().get(keyword)
    if not entry:
        return None
    code, (meaning, cids) = next(iter(entry.items()))
    return code, meaning, frozenset(cids)


def _tokens(name: str) -> tuple[list[str], tuple[str, str] | None]:
    """Lower-case words of ``name`` with the laterality words removed, and that laterality."""
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower()) if w]
    laterality = None
    kept = []
    for w in words:
        if w in ("left", "lt"):
            laterality = LEFT
        elif w in ("right", "rt"):
            laterality = RIGHT
        else:
            kept.append(w)
    return kept, laterality


def _candidates(words: list[str]) -> list[tuple[str, bool]]:
    """(concept keyword, trusted) to try, most specific first: numbered vertebrae, synonyms, word runs.

    ``trusted`` keywords come from our tables; the others must belong to a segment context group.
    """
    out = []
    level = next((w.upper() for w in words if re.fullmatch(r"[ctl]\d{1,2}", w)), None)
    if level and any(w.startswith("vertebr") for w in words):
        out.append((f"{level}Vertebra", True))
    n = len(words)
    for length in range(n, 0, -1):
        for start in range(n - length + 1):
            phrase = " ".join(words[start : start + length])
            if phrase in SYNONYMS:
                out.append((SYNONYMS[phrase], True))
            out.append(("".join(w.capitalize() for w in words[start : start + length]), False))
    return out


def _category(keyword: str, cids: frozenset) -> tuple[str, str]:
    if keyword in ABNORMAL_KEYWORDS or cids & _LESION_CIDS:
        return ABNORMAL_STRUCTURE
    if keyword in TISSUE_KEYWORDS or (cids & _TISSUE_CIDS and not cids & {7151, 7192}):
        return TISSUE
    return ANATOMICAL_STRUCTURE


def codes_for_name(name: str) -> SegmentCodes:
    """SNOMED CT category/type (and laterality) for a structure name such as 'kidney_left' or 'Liver'.

    Names are matched against DICOM's anatomy, lesion and tissue context groups (pydicom's code
    dictionary) via :data:`SYNONYMS` and word runs. A lesion named with its organ ('liver lesion')
    is typed as the lesion with the organ as ``region``. Unknown names get the generic
    Tissue / Tissue pair with ``known=False``.
    """
    words, laterality = _tokens(name)
    found = []  # (category, (code, meaning)) of every matching candidate, most specific first
    for keyword, trusted in _candidates(words):
        concept = _concept(keyword)
        if concept is not None and (trusted or concept[2] & _SEGMENT_CIDS):
            found.append((_category(keyword, concept[2]), concept[:2]))
    if not found:
        return SegmentCodes(TISSUE, TISSUE, laterality, known=False)
    abnormal = next((f for f in found if f[0] == ABNORMAL_STRUCTURE), None)
    if abnormal is None:
        return SegmentCodes(found[0][0], found[0][1], laterality)
    region = next((f[1] for f in found if f[0] == ANATOMICAL_STRUCTURE), None)
    return SegmentCodes(ABNORMAL_STRUCTURE, abnormal[1], laterality, region=region)
