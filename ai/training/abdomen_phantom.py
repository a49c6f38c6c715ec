"""Generated abdominal CTs with varied anatomy: superquadric organs of random size, shape and position.

Each seed draws a body (size, shape, subcutaneous fat), a spine with back muscles, aorta and inferior vena cava,
a two-lobed liver under the right diaphragm dome, a crescent spleen, kidneys with a renal sinus (the left
higher), a stomach with an air-fluid level, gallbladder, pancreas, bowel loops with gas, lung bases and ribs,
then renders them with the same contrast phases, texture, blur and noise as ``real_ct_synth``
(ai.training.ct_synthesis) on a random grid and field of view (full abdomen or a thin slab). Structures carry
TotalSegmentator names, so a config's labels map to them by name. Deterministic per seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ai.training.cases import Case
from ai.training.ct_synthesis import FAT, GAS, OUTSIDE, SOFT, acquire, class_groups, draw_hu, render_labels, scan_grid
from ai.training.datasets import label_lookup, seed_range
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: the phantom's structures (TotalSegmentator ids and names)
NAMES = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver", 6: "stomach",
         7: "pancreas", 14: "lung_lower_lobe_right", 11: "lung_lower_lobe_left", 18: "small_bowel",
         32: "vertebrae_T12", 52: "aorta", 63: "inferior_vena_cava", 86: "autochthon_left", 87: "autochthon_right",
         102: "rib_left_11", 114: "rib_right_11"}
ID = {name: k for k, name in NAMES.items()}
#: world z range (mm) of the generated abdomen; a case shows its upper part down to -40..-160 mm, or a slab
Z_RANGE = (-160.0, 150.0)


class Anatomy:
    """World coordinates of a grid and the class / label maps being drawn on it."""

    def __init__(self, grid: Volume):
        shape = grid.array.shape
        axes = [grid.origin[a] + grid.spacing[a] * np.arange(n, dtype=np.float32)
                for a, n in zip((2, 1, 0), shape, strict=True)]
        self.z, self.y, self.x = np.meshgrid(*axes, indexing="ij", sparse=True)
        self.classes = np.full(shape, OUTSIDE, np.uint8)
        self.labels = np.zeros(shape, np.uint8)

    def shape_mask(self, centre, radii, power: float = 2.0, angle_deg: float = 0.0) -> np.ndarray:
        """Inside a superquadric (|u|^p + |v|^p + |w|^p <= 1) with ``radii``, rotated by ``angle_deg`` about z."""
        a = np.deg2rad(angle_deg)
        dx, dy, dz = self.x - centre[0], self.y - centre[1], self.z - centre[2]
        u = (np.cos(a) * dx + np.sin(a) * dy) / radii[0]
        v = (-np.sin(a) * dx + np.cos(a) * dy) / radii[1]
        return np.abs(u) ** power + np.abs(v) ** power + np.abs(dz / radii[2]) ** power <= 1

    def cylinder(self, centre, radii, power: float = 2.0) -> np.ndarray:
        """Inside a z-cylinder of superelliptic cross-section (every slice)."""
        q = np.abs((self.x - centre[0]) / radii[0]) ** power + np.abs((self.y - centre[1]) / radii[1]) ** power
        return np.broadcast_to(q <= 1, self.classes.shape)

    def paint(self, mask: np.ndarray, name: str | None, tissue: int | None = None) -> None:
        """Set ``mask`` to structure ``name`` (its label and class) or to an unlabelled ``tissue`` class."""
        self.classes[mask] = ID[name] if name else tissue
        self.labels[mask] = ID[name] if name else 0


def draw_anatomy(grid: Volume, half_x: float, half_y: float, rng: np.random.Generator) -> Anatomy:
    """Random abdominal anatomy on ``grid`` in a body of half-widths ``half_x``, ``half_y`` mm: its organs and
    bones (see the module docstring)."""
    an = Anatomy(grid)
    u = rng.uniform
    shape_p = u(2.0, 3.0)
    fat, wall = u(8, 45), u(8, 14)
    an.paint(an.cylinder((0, 0), (half_x, half_y), shape_p), None, FAT)
    an.paint(an.cylinder((0, 0), (half_x - fat, half_y - fat), shape_p), None, SOFT)
    a, b = half_x - fat - wall, half_y - fat - wall  # the abdominal cavity
    cavity = an.cylinder((0, 0), (a, b), shape_p)
    an.paint(cavity, None, FAT)
    for _ in range(int(rng.integers(8, 18))):  # bowel loops, some with gas
        centre = (u(-0.7, 0.7) * a, u(-0.8, 0.3) * b, u(-150, 20))
        loop = an.shape_mask(centre, (u(12, 30), u(12, 30), u(15, 40))) & cavity
        an.paint(loop, "small_bowel")
        if rng.random() < 0.5:
            an.classes[loop & an.shape_mask(centre, (u(5, 12),) * 3)] = GAS
    spine_y = b - u(15, 30)
    dome = u(40, 110)  # diaphragm dome height (z, mm)
    lung_r = (a * u(0.45, 0.55), b * u(0.75, 0.9), u(110, 150))
    lungs = {side: an.shape_mask((side * a * 0.5, b * 0.1, dome + lung_r[2]), lung_r) for side in (-1, 1)}
    # kidneys (left higher), renal sinus fat on the medial side
    kz = dome - u(110, 150)
    for side, name, dz in ((1, "kidney_left", 0.0), (-1, "kidney_right", u(-25, -5))):
        centre = (side * u(55, 80), spine_y - u(0, 15), kz + dz)
        radii = (u(22, 30), u(28, 36), u(45, 60))
        angle = side * u(15, 35)
        kidney = an.shape_mask(centre, radii, u(1.8, 2.4), angle)
        an.paint(kidney, name)
        sinus = an.shape_mask((centre[0] - side * radii[0] * 0.6, centre[1] - 5, centre[2]), (10, 12, 20))
        an.paint(kidney & sinus, None, FAT)
    # pancreas across the midline in front of the spine, gallbladder under the liver
    an.paint(an.shape_mask((u(0, 30), spine_y - u(45, 60), kz + u(35, 55)), (u(45, 65), u(10, 16), u(12, 18)),
                           angle_deg=u(-25, -5)), "pancreas")
    stomach_c = (a * u(0.2, 0.45), -b * u(0.1, 0.4), dome - u(40, 70))
    stomach_r = (u(35, 60), u(28, 45), u(40, 70))
    stomach = an.shape_mask(stomach_c, stomach_r, u(1.8, 2.5), u(-30, 30)) & cavity
    an.paint(stomach, "stomach")
    if rng.random() < 0.8:  # air-fluid level: air anteriorly (lower y) in a supine patient
        an.classes[stomach & (an.y < stomach_c[1] - stomach_r[1] * u(0.1, 0.7))] = GAS
    spleen_c = (a * u(0.55, 0.8), b * u(0.25, 0.55), dome - u(35, 70))
    spleen_r = (u(20, 35), u(40, 65), u(40, 65))
    spleen = an.shape_mask(spleen_c, spleen_r, u(1.8, 2.4), u(20, 55)) & cavity
    spleen &= ~an.shape_mask((spleen_c[0] - spleen_r[0] * 1.2, spleen_c[1] - 10, spleen_c[2]),
                             (spleen_r[0], spleen_r[1] * 0.8, spleen_r[2]))  # concave hilum: a crescent
    an.paint(spleen, "spleen")
    liver_z = dome - u(40, 70)
    right = an.shape_mask((-a * u(0.35, 0.55), b * u(-0.1, 0.15), liver_z), (a * u(0.45, 0.6), b * u(0.6, 0.85),
                                                                               u(65, 100)), u(1.8, 3.0))
    left = an.shape_mask((a * u(0.0, 0.3), -b * u(0.3, 0.55), liver_z + u(0, 25)), (a * u(0.3, 0.55),
                                                                                    b * u(0.2, 0.35), u(35, 60)))
    liver = (right | left) & cavity & ~lungs[-1] & ~lungs[1]
    an.paint(liver, "liver")
    an.paint(an.shape_mask((-a * u(0.15, 0.35), -b * u(0.2, 0.45), liver_z - u(20, 50)), (u(12, 20), u(12, 20),
                                                                                         u(20, 40))) & liver,
             "gallbladder")
    # vessels, spine, back muscles, lung bases, ribs
    an.paint(an.cylinder((u(5, 20), spine_y - u(25, 35)), (u(9, 14),) * 2), "aorta")
    an.paint(an.cylinder((-u(18, 30), spine_y - u(25, 35)), (u(10, 15), u(8, 12))) & ~liver, "inferior_vena_cava")
    body_r = u(16, 22)
    an.paint(an.cylinder((0, spine_y), (body_r * 1.1, body_r)), "vertebrae_T12")
    an.paint(an.cylinder((0, spine_y + body_r + 9), (6, 6)), None, SOFT)  # spinal canal
    for side, name in ((1, "autochthon_left"), (-1, "autochthon_right")):
        an.paint(an.cylinder((side * u(25, 35), spine_y + body_r + u(15, 25)), (u(18, 25), u(15, 22))), name)
    for side, name in ((-1, "lung_lower_lobe_right"), (1, "lung_lower_lobe_left")):
        an.paint(lungs[side] & cavity, name)
    ring = an.cylinder((0, 0), (a + wall * 0.5 + 4, b + wall * 0.5 + 4)) & ~an.cylinder((0, 0), (a + 2, b + 2))
    step = u(22, 32)
    for rib_z in np.arange(dome - 200, dome + 60, step):
        slope = (an.y / max(b, 1)) * u(15, 30)  # ribs run down toward the front
        band = ring & (np.abs(an.z - rib_z - slope) <= u(3, 5)) & (an.y < spine_y - 10)
        an.paint(band & (an.x >= 0), "rib_left_11")
        an.paint(band & (an.x < 0), "rib_right_11")
    return an


def make_case(seed: int, labels: dict[int, str]) -> tuple[Volume, Volume, str]:
    """(CT, labels with the config's ids, description) of phantom ``seed``."""
    rng = np.random.default_rng([seed, 2024])
    half_x, half_y = rng.uniform(125, 185), rng.uniform(95, 140)
    margin = rng.uniform(5, 40)
    lo = np.array([-half_x - margin, -half_y - margin, rng.uniform(Z_RANGE[0], -40)])
    hi = np.array([half_x + margin, half_y + margin, Z_RANGE[1]])
    if rng.random() < 0.4:  # a thin slab through the upper abdomen
        lo[2] = rng.uniform(-80, 60)
        hi[2] = lo[2] + rng.uniform(30, 60)
    grid = scan_grid(lo, hi, rng)
    an = draw_anatomy(grid, half_x, half_y, rng)
    phase, lut = draw_hu(class_groups(an.classes, NAMES), rng)
    hu = render_labels(an.classes, class_groups(an.classes, NAMES), lut, rng)
    ct = grid.with_array(acquire(hu, grid, rng), modality="CT", units="HU", description=f"abdomen phantom {seed}")
    lab = grid.with_array(label_lookup(NAMES, labels)[an.labels], modality="SEG", units="label")
    return ct, lab, f"{phase}, {ct.spacing[0]:.1f}x{ct.spacing[1]:.1f}x{ct.spacing[2]:.1f} mm, {ct.size[2]} slices"


def phantom_cases(entry: dict, labels: dict[int, str], base: Path) -> list[Case]:
    """Kind ``abdomen_ct_phantom``: one generated abdominal CT per seed of ``seeds: [start, stop]``."""
    seeds = seed_range(entry, base)
    source_text = (f"abdomen_ct_phantom seeds {seeds.start}-{seeds.stop - 1}: generated anatomy (ai.training."
                   "abdomen_phantom), contrast phases, voxel sizes, fields of view, noise")
    cases = []
    for seed in seeds:
        ct, lab, how = make_case(seed, labels)
        cases.append(Case(f"abdomen_ct_phantom seed {seed}", [ct], lab, source=source_text))
        log.info("abdomen_ct_phantom seed %d: %s", seed, how)
    return cases
