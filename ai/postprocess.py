"""A segmentation card's post-processing: per-label probability thresholds, the smallest component kept, the lowest
median probability of a component kept, and keeping only the largest component of a label that is one object.

The card's ``postprocessing`` block (chosen on validation data by ai.training.postprocessing, as nnU-Net chooses
its own) names labels, e.g. ``{"labels": {"lesion": {"threshold": 0.8, "min_component_mm3": 1000}}, ...}``:

- ``threshold``: the label is a candidate at a voxel where its probability is >= the threshold (a label with no
  threshold is a candidate where it has the highest probability, the plain argmax); the voxel takes the candidate
  of highest probability, or background when there is none.
- ``min_component_mm3``: connected components of the label (26-connected, as ai.detection counts findings) smaller
  than this volume become background.
- ``min_component_confidence``: a connected component of the label whose median probability of the label is
  below this value is not kept: a blob the network half believes in (a kidney guessed behind the liver of a slab
  that holds no kidney), where the organs it finds are near-certain. Its voxels take their next most probable
  label, as below. Applied before ``largest_component``, so that such a blob is not kept as the largest one.
- ``largest_component``: true keeps only the label's largest connected component (26-connected), as nnU-Net's
  "remove all but the largest component" does, for an organ that is one object: a blob of liver in the spleen is
  an error of the network, not a second liver. Unlike nnU-Net, which makes it background, the blob's voxels take
  their next most probable label (never one already kept to its largest component, so that one stays whole): the
  blob of liver becomes spleen where the network thought spleen next likeliest.

Other keys of the block (how and on what it was chosen) are a record for the card's reader.
"""

from __future__ import annotations

import numpy as np

from ai.numbers import is_number

LABEL_FIELDS = ("threshold", "min_component_mm3", "min_component_confidence", "largest_component")


def postprocessing_problem(block, labels: dict[int, str]) -> str | None:
    """Why a card's ``postprocessing`` block is not valid for its ``labels`` {id: name}, or None."""
    if not isinstance(block, dict):
        return f"postprocessing {block!r} is not an object such as {{'labels': {{'lesion': {{'threshold': 0.8}}}}}}"
    rules = block.get("labels", {})
    if not isinstance(rules, dict):
        return f"postprocessing labels {rules!r} is not an object of label name -> rules"
    names = {v for k, v in labels.items() if k}
    for name, rule in rules.items():
        if name not in names:
            return f"postprocessing names label {name!r}, which the card does not have ({', '.join(sorted(names))})"
        if not isinstance(rule, dict) or set(rule) - set(LABEL_FIELDS):
            return f"postprocessing of {name!r} must be an object of {', '.join(LABEL_FIELDS)}, got {rule!r}"
        t = rule.get("threshold", 0.5)
        if not is_number(t) or not 0 < t < 1:
            return f"postprocessing threshold of {name!r} must be in (0, 1), got {t!r}"
        v = rule.get("min_component_mm3", 0)
        if not is_number(v) or v < 0:
            return f"postprocessing min_component_mm3 of {name!r} must be >= 0, got {v!r}"
        c = rule.get("min_component_confidence", 0)
        if not is_number(c) or not 0 <= c < 1:
            return f"postprocessing min_component_confidence of {name!r} must be in [0, 1), got {c!r}"
        largest = rule.get("largest_component", False)
        if not isinstance(largest, bool):
            return f"postprocessing largest_component of {name!r} must be true or false, got {largest!r}"
    return None


def describe(block: dict | None) -> str:
    """One line for a card's reader: each label's rule and what it was chosen on ("" when there is none)."""
    rules = (block or {}).get("labels") or {}
    parts = []
    for name, rule in rules.items():
        terms = ([f"probability >= {rule['threshold']:g}"] if "threshold" in rule else []) + (
            [f"components >= {rule['min_component_mm3']:g} mm3"] if rule.get("min_component_mm3") else []) + (
            [f"components of median probability >= {rule['min_component_confidence']:g}"]
            if rule.get("min_component_confidence") else []) + (
            ["largest component only"] if rule.get("largest_component") else [])
        parts.append(f"{name}: {' and '.join(terms) or 'argmax'}")
    chosen = f" (chosen on validation: {block['chosen_on']})" if parts and block.get("chosen_on") else ""
    return "; ".join(parts) + chosen


def label_rules(block: dict | None, labels: dict[int, str]) -> dict[int, dict]:
    """{label id: rule} of the labels a (valid) ``postprocessing`` block names."""
    ids = {name: k for k, name in labels.items() if k}
    return {ids[name]: rule for name, rule in ((block or {}).get("labels") or {}).items()}


def label_map(probs: np.ndarray, spacing_xyz, rules: dict[int, dict]) -> np.ndarray:
    """uint8 labels (z, y, x) from class probabilities ``probs`` (K, z, y, x) on a grid of ``spacing_xyz`` mm,
    by ``rules`` {label id: {"threshold", "min_component_mm3", "min_component_confidence", "largest_component"}}
    (none: the argmax)."""
    labels = np.argmax(probs, axis=0).astype(np.uint8)
    thresholded = {k: r["threshold"] for k, r in rules.items() if "threshold" in r}
    if thresholded:
        score = np.zeros(labels.shape, np.float32)  # probability of the best candidate so far
        chosen = np.zeros(labels.shape, np.uint8)
        for k in range(1, probs.shape[0]):
            p = probs[k]
            candidate = p >= thresholded[k] if k in thresholded else labels == k
            better = candidate & (p > score)
            chosen[better] = k
            score[better] = p[better]
        labels = chosen
    whole: list[int] = []  # labels kept to their largest component: they take no more voxels
    for k, rule in sorted(rules.items()):
        if rule.get("min_component_mm3", 0) > 0:
            drop_small_components(labels, k, rule["min_component_mm3"] / float(np.prod(spacing_xyz)))
        if rule.get("min_component_confidence", 0) > 0:
            drop_unconfident_components(labels, k, probs, rule["min_component_confidence"], excluded=whole)
        if rule.get("largest_component"):
            whole.append(k)
            keep_largest_component(labels, k, probs, excluded=whole)
    return labels


def _components(labels: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """(component index per voxel, voxel count per index; index 0 = not ``label``) of ``label``'s 26-connected
    components."""
    from scipy import ndimage

    components, n = ndimage.label(labels == label, structure=np.ones((3, 3, 3), bool))
    return components, np.bincount(components.ravel(), minlength=n + 1)


def drop_small_components(labels: np.ndarray, label: int, min_voxels: float) -> None:
    """Set the 26-connected components of ``label`` with fewer than ``min_voxels`` voxels to background, in place."""
    components, sizes = _components(labels, label)
    small = sizes < min_voxels
    small[0] = False
    labels[small[components]] = 0


def drop_unconfident_components(labels: np.ndarray, label: int, probs: np.ndarray, min_median: float,
                                excluded=()) -> None:
    """Drop, in place, the 26-connected components of ``label`` whose median probability of ``label`` in ``probs``
    (K, z, y, x) is below ``min_median``; their voxels take their most probable label other than ``label`` and the
    labels ``excluded``."""
    from scipy import ndimage

    components, sizes = _components(labels, label)
    if len(sizes) < 2:
        return
    medians = np.asarray(ndimage.median(probs[label], components, index=np.arange(1, len(sizes))))
    dropped = np.concatenate([[False], medians < min_median])
    _relabel(labels, dropped[components], label, probs, excluded)


def keep_largest_component(labels: np.ndarray, label: int, probs: np.ndarray | None = None,
                           excluded=()) -> None:
    """Keep only the largest 26-connected component of ``label`` (components tied for the largest are all kept),
    in place. The other components' voxels take their most probable label in ``probs`` (K, z, y, x) other than
    ``label`` and the labels ``excluded``; background without ``probs``."""
    components, sizes = _components(labels, label)
    sizes[0] = 0
    if sizes.max() == 0:
        return
    dropped = sizes < sizes.max()
    dropped[0] = False
    _relabel(labels, dropped[components], label, probs, excluded)


def _relabel(labels: np.ndarray, where: np.ndarray, label: int, probs: np.ndarray | None, excluded) -> None:
    """Give the voxels ``where`` (of ``label``) their most probable label in ``probs`` other than ``label`` and the
    labels ``excluded``; background without ``probs``."""
    if probs is None:
        labels[where] = 0
        return
    candidates = probs[:, where]  # (K, voxels): a copy
    candidates[sorted({label, *excluded})] = -np.inf
    labels[where] = np.argmax(candidates, axis=0)
