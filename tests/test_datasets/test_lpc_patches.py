"""Patch geometry of the LPC on hand-built volumes: centre, 64 px padding, z resampling of an
anisotropic volume, air beyond the scan, the 3D cube."""
import numpy as np
import pytest

from mmlesion.datasets.lpc_patches import (
    AIR_HU,
    VIEWS,
    SliceStack,
    extract_cube,
    extract_views,
    extract_volume_patches,
    proposal_region,
)
from mmlesion.structures import Tracklet

BG, FG = 0.0, 1000.0


def box_volume(shape_zyx, z_range, y_range, x_range, first=0, missing=()):
    """``{z: H x W}`` with FG HU inside the half-open box, BG elsewhere."""
    vol = {}
    for k in range(shape_zyx[0]):
        if first + k in missing:
            continue
        a = np.full(shape_zyx[1:], BG, np.float32)
        if z_range[0] <= first + k < z_range[1]:
            a[y_range[0]:y_range[1], x_range[0]:x_range[1]] = FG
        vol[first + k] = a
    return vol


def tracklet(z0, z1, box):
    z = np.arange(z0, z1 + 1)
    return Tracklet(z, np.array([list(box) + [0.9]] * z.size))


def test_centre_and_64px_padding_isotropic():
    # lesion x 70..89, y 80..99, slices 80..99; 1 mm voxels
    vol = box_volume((180, 180, 180), (80, 100), (80, 100), (70, 90))
    t = tracklet(80, 99, [70, 80, 90, 100])
    r = proposal_region(t.z, t.boxes, pixel_mm=1.0, slice_interval_mm=1.0)
    assert (r.cx_px, r.cy_px, r.cz) == (80.0, 90.0, 89.5)
    assert r.extent_px == dict(x=148.0, y=148.0, z=148.0)  # 20 + 2 * 64 on every axis
    v = extract_views(vol, r, VIEWS, size=148, window_hu=None)  # one output px = one voxel
    assert v.shape == (3, 148, 148)
    expect = np.full((148, 148), BG, np.float32)
    expect[64:84, 64:84] = FG  # the lesion sits in the middle, 64 px of context each way
    for view in v:
        np.testing.assert_allclose(view, expect, atol=1e-3)


def test_anisotropic_volume_is_resampled_in_z():
    # 5 mm slices, 0.7 mm pixels: a 30 x 30 px lesion (21 mm) on 5 slices (25 mm)
    vol = box_volume((30, 300, 300), (10, 15), (135, 165), (135, 165))
    t = tracklet(10, 14, [135, 135, 165, 165])
    r = proposal_region(t.z, t.boxes, pixel_mm=0.7, slice_interval_mm=5.0)
    assert r.extent_px['x'] == pytest.approx(30 + 128)
    assert r.extent_px['z'] == pytest.approx(25 / 0.7 + 128)  # the same 44.8 mm margin in z
    size = 64
    v = extract_views(vol, r, VIEWS, size=size, window_hu=None)
    frac = (v - BG) / (FG - BG)
    axial, coronal, sagittal = frac
    # axial: square view of max(158, 158) px; the lesion spans 30 / 158 of it
    assert axial[size // 2].sum() == pytest.approx(30 / 158 * size, abs=0.05)
    side = 25 / 0.7 + 128  # coronal / sagittal: square of the larger extent, z
    for view in (coronal, sagittal):
        width = view[size // 2].sum()  # across x (coronal) or y (sagittal)
        height = view[:, size // 2].sum()  # along z
        assert width == pytest.approx(30 / side * size, abs=0.05)
        # in mm the lesion is 25 mm tall and 21 mm wide: the view's pixels are square in mm
        assert height == pytest.approx(25 / 0.7 / side * size, abs=0.3)
        assert height / width == pytest.approx(25 / 21, rel=0.03)
        # z runs down the rows, centred
        rows = np.flatnonzero(view[:, size // 2] > 0.5)
        assert abs((rows[0] + rows[-1]) / 2 - (size - 1) / 2) <= 0.5


def test_outside_the_scan_is_air():
    vol = box_volume((10, 100, 100), (0, 3), (50, 60), (0, 10))
    t = tracklet(0, 2, [0, 50, 10, 60])  # touches the left border and the first slice
    r = proposal_region(t.z, t.boxes, pixel_mm=1.0, slice_interval_mm=1.0)
    size = int(r.extent_px['x'])  # 138 px: one output pixel per voxel
    v = extract_views(vol, r, VIEWS, size=size, window_hu=(-1024, 3071))
    axial, coronal, sagittal = v
    left = int(round(size / 2 - r.cx_px))  # columns left of x = 0 (64 px of air)
    assert left == 64
    top = int(round(size / 2 - r.cy_px))  # rows above y = 0 (14), below y = 100 from 114
    assert np.all(axial[:, :left] == 0.0)  # -1024 HU -> 0
    assert np.all(axial[:top] == 0.0) and np.all(axial[top + 100:] == 0.0)
    assert np.all(axial[top:top + 100, left:] > 0.0)
    # coronal rows z < -0.5 and z > 9.5 are air: the column holds 10 slices' worth of tissue
    # (rows straddling the border blend air and tissue)
    bg = (BG + 1024) / 4095 * 255
    assert coronal[:, -1].sum() / bg == pytest.approx(10.0, abs=1e-3)
    assert np.flatnonzero(coronal[:, -1] > 0).size == 11
    cube = extract_cube(vol, r, size=size, window_hu=None)
    assert cube[0, 0, 0] == AIR_HU and cube.shape == (size, ) * 3


def test_missing_slice_takes_its_neighbour():
    vol = box_volume((10, 50, 50), (0, 10), (20, 30), (20, 30), missing={5})
    stack = SliceStack(vol)
    assert stack.num_slices == 10
    r = proposal_region([5], [[20, 20, 30, 30]], 1.0, 1.0, pad_px=5)
    v = extract_views(stack, r, ('axial', ), size=20, window_hu=None)
    assert v.max() == FG  # slice 5 reads as slice 4 (or 6), not air


def test_cube_and_area_averaging():
    vol = box_volume((180, 180, 180), (80, 100), (80, 100), (70, 90))
    t = tracklet(80, 99, [70, 80, 90, 100])
    r = proposal_region(t.z, t.boxes, pixel_mm=1.0, slice_interval_mm=1.0)
    cube = extract_cube(vol, r, size=37, window_hu=None)  # 148 / 4: averages 4^3 voxels
    expect = np.full((37, 37, 37), BG, np.float32)
    expect[16:21, 16:21, 16:21] = FG
    np.testing.assert_allclose(cube, expect, atol=1e-2)
    # (D, H, W) sizes and a stretched (non-square) cube
    assert extract_cube(vol, r, size=(8, 16, 12), keep_aspect=False).shape == (8, 16, 12)


def test_all_proposals_of_a_volume_from_one_dict():
    vol = box_volume((20, 128, 128), (5, 10), (40, 60), (40, 60))
    trks = [tracklet(5, 9, [40, 40, 60, 60]), tracklet(12, 14, [80, 80, 90, 95])]
    views = extract_volume_patches(vol, trks, 0.8, 2.5, size=32)
    cubes = extract_volume_patches(vol, trks, 0.8, 2.5, mode='cube', size=16)
    assert [p.shape for p in views] == [(3, 32, 32)] * 2
    assert [p.shape for p in cubes] == [(16, 16, 16)] * 2
    assert views[0].max() > views[1].max()  # the lesion only in the first
    assert 0.0 <= views[0].min() and views[0].max() <= 255.0  # windowed to 0..255
    with pytest.raises(ValueError, match='mode'):
        extract_volume_patches(vol, trks, 0.8, 2.5, mode='mip')
    with pytest.raises(ValueError, match='unknown view'):
        extract_views(vol, proposal_region([5], [[0, 0, 5, 5]], 1, 1), ('oblique', ))


def test_unknown_slice_interval_uses_the_fallback():
    r = proposal_region([3, 4], [[0, 0, 10, 10]] * 2, 0.5, float('nan'), pad_px=0,
                        unknown_interval_mm=2.0)
    assert r.slice_interval_mm == 2.0 and r.extent_px['z'] == pytest.approx(2 * 2.0 / 0.5)
