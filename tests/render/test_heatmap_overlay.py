"""AI result layers of an MPR view, rendered offscreen on the real shared CT (direction diag(-1,-1,1)):
heat-map colours aligned in world space with opacity and floor, agreement colours, detection boxes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viewer.core.io import load_volume
from viewer.core.volume import Volume

SIZE = 400


@pytest.fixture(scope="module")
def ct(shared_data):
    return load_volume(shared_data / "ct_abdomen_3mm.nii.gz")


@pytest.fixture
def view(ct):
    """An offscreen axial SliceView of the shared CT, crosshair hidden; yields (view, render())."""
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    from viewer.render.offscreen import window_pixels
    from viewer.render.slice_view import SliceView

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(SIZE, SIZE)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    sv = SliceView(ren, "axial")
    sv.set_volume(ct)
    sv.set_crosshair_visible(False)
    win.Render()
    sv.reset_camera()

    def render() -> np.ndarray:
        sv.set_crosshair_visible(False)  # set_cursor shows it again
        win.Render()
        return window_pixels(win).astype(np.int16)

    yield sv, render
    win.Finalize()


def _blob(ct: Volume, centre, sigma_mm=15.0) -> Volume:
    """A Gaussian heat map (peak 1) on its own 2 mm identity-direction grid, centred at world ``centre``."""
    n = 40
    origin = np.asarray(centre) - (n - 1) * 2.0 / 2
    zz, yy, xx = np.meshgrid(*(np.arange(n) * 2.0,) * 3, indexing="ij")
    c = (n - 1) * 2.0 / 2
    heat = np.exp(-((xx - c) ** 2 + (yy - c) ** 2 + (zz - c) ** 2) / (2 * sigma_mm**2)).astype(np.float32)
    return Volume(heat, (2.0, 2.0, 2.0), tuple(origin), np.eye(3), "OT", "arbitrary")


def _pixel(view_, world) -> tuple[int, int]:
    """(row, col) of the rendered image (row 0 at top) under a world point."""
    x, y = view_.world_to_display(world)
    return SIZE - 1 - int(round(y)), int(round(x))


def _changed(a, b, tol=30) -> np.ndarray:
    return np.abs(a - b).sum(axis=2) > tol


def test_heatmap_is_coloured_where_high_transparent_where_zero_and_aligned_in_world(ct, view, artifacts):
    sv, render = view
    lo, hi = ct.world_bounds()
    centre = (lo + hi) / 2 + np.array([-40.0, 0.0, 0.0])  # patient right half of the body
    sv.set_cursor(centre)
    plain = render()
    sv.set_heatmap(_blob(ct, centre), colormap="jet", opacity=0.6, floor=0.2)
    hot = render()
    Image.fromarray(hot.astype(np.uint8)).save(artifacts / "heatmap_axial_overlay.png")
    changed = _changed(hot, plain, tol=0)  # any tint: the alpha rises from ~0 at the floor
    r, c = _pixel(sv, centre)
    assert changed[r, c], "no colour at the heat map's peak"
    # the peak (t = 1) is red in 'jet': red dominates there
    assert hot[r, c, 0] > hot[r, c, 2] + 60
    far = centre + np.array([80.0, 0.0, 0.0])  # 80 mm away the blob is < 1e-6: no colour
    fr, fc = _pixel(sv, far)
    assert not changed[fr, fc]
    # aligned in world space: the coloured region is centred on the blob's centre (the image is flipped
    # on both in-plane axes relative to the blob's grid, so a misplaced overlay would be far off)
    rows, cols = np.nonzero(changed)
    assert abs(rows.mean() - r) < 3 and abs(cols.mean() - c) < 3
    # floor 0.2 of a Gaussian with sigma 15 mm: radius 15 * sqrt(2 ln 5) = 26.9 mm
    mm_per_px = 2 * sv.renderer.GetActiveCamera().GetParallelScale() / SIZE
    radius_px = np.sqrt(changed.sum() / np.pi)
    assert abs(radius_px * mm_per_px - 26.9) < 3.0


def test_heatmap_opacity_and_visibility(ct, view):
    sv, render = view
    centre = ct.index_to_world((np.asarray(ct.size) - 1) / 2)
    sv.set_cursor(centre)
    plain = render()
    sv.set_heatmap(_blob(ct, centre), opacity=0.3)
    faint = render()
    sv.set_heatmap_style(opacity=0.9)
    strong = render()
    r, c = _pixel(sv, centre)
    assert np.abs(strong[r, c] - plain[r, c]).sum() > np.abs(faint[r, c] - plain[r, c]).sum() + 40
    sv.set_heatmap_style(visible=False)
    assert np.array_equal(render(), plain)
    sv.set_heatmap_style(visible=True)
    assert not np.array_equal(render(), plain)
    sv.set_heatmap(None)
    assert np.array_equal(render(), plain)


def test_agreement_colours_and_detection_boxes_where_the_slice_cuts(ct, view, artifacts):
    sv, render = view
    centre = ct.index_to_world((np.asarray(ct.size) - 1) / 2)
    sv.set_cursor(centre)
    plain = render()
    amap = np.zeros(ct.array.shape, np.uint8)
    k = int(round(ct.world_to_index(centre)[2]))
    amap[k, 40:60, 40:60] = 1  # both
    amap[k, 40:60, 70:90] = 2  # only A
    amap[k, 70:90, 40:60] = 3  # only B
    sv.set_agreement(amap)
    img = render()

    def colour_at(i, j):
        world = ct.index_to_world((i, j, k))
        r, c = _pixel(sv, world)
        return img[r, c] - plain[r, c]

    assert np.argmax(colour_at(50, 50)) == 1  # green: both
    d = colour_at(80, 50)
    assert d[0] > d[2] + 40  # orange: only A
    d = colour_at(50, 80)
    assert d[2] > d[0] + 40  # blue: only B
    sv.set_agreement(None)
    box = [list(centre - [20, 20, 10]), list(centre + [20, 20, 10])]
    sv.set_detections([{"label": 1, "box_mm": box}])
    boxed = render()
    Image.fromarray(boxed.astype(np.uint8)).save(artifacts / "detection_box_axial.png")
    changed = _changed(boxed, plain)
    r0, c0 = _pixel(sv, box[0])
    r1, c1 = _pixel(sv, box[1])
    rows, cols = np.nonzero(changed)
    # an outline (not a filled box) along the box's in-plane extent (detection boxes span voxel edges)
    assert abs(cols.min() - min(c0, c1)) < 3 and abs(cols.max() - max(c0, c1)) < 3
    assert abs(rows.min() - min(r0, r1)) < 3 and abs(rows.max() - max(r0, r1)) < 3
    assert not changed[(r0 + r1) // 2, (c0 + c1) // 2]
    sv.set_cursor(centre + [0, 0, 30])  # 30 mm above the box: nothing drawn
    above_plain = render()
    sv.set_detections([])
    assert np.array_equal(render(), above_plain)
