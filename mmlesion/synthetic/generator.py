"""Write a synthetic dataset in DeepLesion's on-disk format, with its complete ground truth.

Output folder ``DIR``:

- ``Images_png/PPPPPP_SS_RR/KKK.png``: 16-bit slices, raw = HU + 32768 with HU clipped to
  [-1024, 3071] (air is about -1000 HU, raw about 31768).
- ``DL_info.csv``: DeepLesion's header and quoting, one row per RECIST-marked lesion, 1-based
  coordinates.
- ``ground_truth/``: the complete annotation in the Lesion Harvester pickle formats (2D files
  ``{key: {z_rel: [[x1, y1, x2, y2, z_rel, z_rel], ...]}}``, ``Revised-*`` keys ending in
  ``.annot``; ``3D-Box.pkl`` ``{key: [[x1, y1, x2, y2, z1, z2], ...]}``; x, y 1-based like
  DL_info.csv, z relative to the sub-volume's first slice):
  ``Revised-Train-VM.pkl`` (V_M), ``Revised-Train-VHtest.pkl`` (V_H^test), ``Revised-Valid.pkl``,
  ``Revised-Test.pkl`` (V_D^test), ``RECIST-Box-Valid.pkl``, ``RECIST-Box-Test.pkl`` (marked,
  not noisy lesions only) and ``3D-Box.pkl`` (all test sub-volumes); plus ``truth.json`` with
  every lesion and look-alike of every sub-volume (0-based pixels, absolute slices).
- ``summary.json``: counts and the generation time.

Determinism: the layout (patients, splits, roles) comes from a generator seeded with
``(seed, layout stream)``; each series draws its phantom, lesions and noise from generators
seeded with ``(seed, 1, patient, study, series)``, independent of every other series' draws.
The sub-volumes of one series share that series' phantom: they are two slice ranges of one scan.
The same seed gives the same bytes, for any number of ``workers`` (series are rendered in forked
processes and numbered and written to DL_info.csv in series order).
"""
import argparse
import csv
import functools
import io
import math
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.utils.fileio import atomic_dump_json, atomic_dump_pickle, atomic_open, atomic_write_bytes
from mmlesion.datasets.recist import recist_box, recist_from_mask
from mmlesion.structures.volume_key import series_name, slice_file_name, volume_key
from .layout import SPLIT_CODE, SeriesLayout, plan_layout
from .lesions import (MAX_DIAMETER_MM, LookAlike, Lesion, PlacementContext, place_lesion,
                      place_tube)
from .phantom import (BODY_LEVEL_MM, LESION_HOSTS, REGION_LEVEL, REGION_WEIGHTS, REGIONS,
                      TUBE_HOSTS, build_anatomy, make_grid)
from .shapes import Ellipsoid, Grid, paint_anatomy, pv_weight
from mmlesion.datasets.volume_reader import encode_uint16_png
from mmlesion.datasets.converters.dl_info import DL_INFO_HEADER  # the one definition of the real header


HU_MIN, HU_MAX = -1024, 3071
HU_OFFSET = 32768
RECIST_PAD_PX = 5.0
# DeepLesion's slice intervals, weighted toward 5 and 2.5 mm like the dataset.
SLICE_INTERVALS_MM = (1.0, 1.25, 2.0, 2.5, 5.0)
SLICE_INTERVAL_WEIGHTS = (0.12, 0.05, 0.13, 0.25, 0.45)
ANATOMIES = ('phantom', 'real')
MIN_IMAGE_SIZE = 96  # px; smaller phantoms leave no room for 5 mm lesions beside the tubes
HALF_RANGE_MM = 30.0  # DeepLesion releases about +-30 mm around key slices
MARKED_PER_VOLUME = ((1, 2, 3), (0.6, 0.3, 0.1))
UNMARKED_MEAN = 1.85  # Poisson mean of unmarked lesions per sub-volume: about 45% marked
LUNG_WINDOW = (-1350, 150)
BONE_WINDOW = (-450, 1050)
SOFT_WINDOWS = ((-175, 275), (-160, 240))
GT_FILES = {
    'V_M': 'Revised-Train-VM.pkl',
    'V_H_test': 'Revised-Train-VHtest.pkl',
    'val': 'Revised-Valid.pkl',
    'test': 'Revised-Test.pkl',
}




@dataclass
class SubVolume:
    index: int  # within the series
    start: int  # absolute slice index, inclusive
    end: int  # absolute slice index, inclusive
    key_slices: List[int]  # absolute key slices of the marked lesions, one per marked lesion
    role: str
    key: str = ''


@dataclass
class SeriesPlan:
    layout: SeriesLayout
    name: str
    region: str
    width: int
    height: int
    spacing_mm: float  # x = y, mm/px
    slice_interval_mm: float
    noise_hu: float
    smooth_sigma_px: float
    tex_sigma_px: float
    tex_corr_mm: float
    soft_window: Tuple[int, int]
    level0: float  # normalised body level of absolute slice 0
    subvolumes: List[SubVolume]
    organs: list
    grid: Grid
    lesions: List[Lesion]
    lookalikes: List[LookAlike]
    noise_seed: np.random.SeedSequence = field(repr=False)


def _g(v: float) -> str:
    """DeepLesion's number style: 6 significant digits, no trailing zeros (``%g``)."""
    s = '%g' % float(v)
    return '0' if s == '-0' else s


def _r3(v: float) -> float:
    r = round(float(v), 3)
    return 0.0 if r == 0 else r


def _f3(v: float) -> str:
    """A coordinate with at most 3 decimals, like DL_info.csv (e.g. 154.273, 128)."""
    s = f'{_r3(v):.3f}'.rstrip('0').rstrip('.')
    return '0' if s in ('', '-0') else s


def _choose_interval(rng: np.random.Generator, allowed: Sequence[float]) -> float:
    table = dict(zip(SLICE_INTERVALS_MM, SLICE_INTERVAL_WEIGHTS))
    weights = np.array([table.get(float(a), 1.0 / len(allowed)) for a in allowed])
    return float(allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))])


def plan_series(layout: SeriesLayout, seed: int, image_size: int,
                slice_intervals_mm: Sequence[float], max_slices: int,
                small_image_fraction: float, noisy_fraction: float) -> SeriesPlan:
    """Draw everything about one series except its pixels: geometry, lesions, look-alikes."""
    ss = np.random.SeedSequence([int(seed), 1, layout.patient, layout.study, layout.series])
    geo_seed, noise_seed = ss.spawn(2)
    rng = np.random.default_rng(geo_seed)
    region = REGIONS[int(rng.choice(len(REGIONS), p=REGION_WEIGHTS))]
    size = image_size
    if rng.random() < small_image_fraction:
        size = max(MIN_IMAGE_SIZE, int(round(0.75 * image_size / 2.0)) * 2)
    width = height = size
    fov_mm = int(rng.integers(308, 502))  # spacing = FOV / 512: 0.6-0.98 mm/px
    spacing = float(_g(fov_mm / 512.0))
    dz = _choose_interval(rng, slice_intervals_mm)

    # Sub-volumes: +-30 mm around the key slices (fewer slices when the cap demands it).
    h_full = int(round(HALF_RANGE_MM / dz))
    spread_max = max(0, max_slices - 1 - 2 * min(h_full, 8))
    cursor = int(rng.integers(1, max(2, int(150 / dz)) + 1))
    subvolumes = []
    for j in range(layout.n_subvolumes):
        m = int(rng.choice(MARKED_PER_VOLUME[0], p=MARKED_PER_VOLUME[1]))
        spread = 0 if m == 1 else min(int(round(rng.uniform(0, 80) / dz)), spread_max)
        h = max(0, min(h_full, (max_slices - 1 - spread) // 2))
        first_key = cursor + h
        keys = [first_key]
        if m >= 2:
            keys.append(first_key + spread)
        extra = rng.integers(first_key, first_key + spread + 1, size=max(m - 2, 0))
        keys += [int(k) for k in extra]
        start, end = cursor, first_key + spread + h
        subvolumes.append(SubVolume(j, start, end, sorted(keys), layout.roles[j]))
        # Non-contiguous sub-volumes of one series, far enough apart that no lesion is seen in both.
        cursor = end + 1 + int(math.ceil(35.0 / dz)) + 1 + int(rng.integers(0, 6))
    name = series_name(layout.patient, layout.study, layout.series)
    for sv in subvolumes:
        sv.key = volume_key(layout.patient, layout.study, layout.series, sv.start, sv.end)

    z_lo = subvolumes[0].start * dz - 5.0
    z_hi = subvolumes[-1].end * dz + 5.0
    grid = make_grid(width, height, rng)
    organs = build_anatomy(region, width, height, z_lo, z_hi, rng)
    ctx = PlacementContext(organs, grid, spacing)
    size_factor = size / 512.0
    for th in TUBE_HOSTS[region]:
        for _ in range(int(rng.integers(th.count[0], th.count[1] + 1))):
            place_tube(ctx, th, z_lo, z_hi, size_factor, rng)

    hosts = LESION_HOSTS[region]
    host_p = np.array([h.weight for h in hosts])
    host_p /= host_p.sum()
    fallback = sorted(hosts, key=lambda h: -h.weight)
    max_d = min(MAX_DIAMETER_MM, MAX_DIAMETER_MM * math.sqrt(size_factor))
    min_c = max(2.0, 0.5 * dz + 1.0)  # every lesion shows on at least one slice
    for sv in subvolumes:
        for key in sv.key_slices:
            zc = (key + float(rng.uniform(-0.3, 0.3))) * dz
            first = hosts[int(rng.choice(len(hosts), p=host_p))]
            lesion = None
            tries = [(first, False)] + [(h, False) for h in fallback if h is not first] + [
                (h, True) for h in fallback]
            for host, relaxed in tries:
                lesion = place_lesion(ctx, host, zc, True, sv.index, max_d, min_c, rng,
                                      relaxed=relaxed)
                if lesion is not None:
                    break
            if lesion is None:
                raise RuntimeError(
                    f'synthetic series {name}: no room for a marked lesion at slice {key} in any '
                    f'{region} host (image {width}x{height}); use a larger --image-size')
            lesion.noisy = bool(rng.random() < noisy_fraction)
        for _ in range(min(int(rng.poisson(UNMARKED_MEAN)), 6)):
            zc = float(rng.uniform(sv.start, sv.end)) * dz
            for _ in range(3):  # another host when the first has no room (small images)
                host = hosts[int(rng.choice(len(hosts), p=host_p))]
                if place_lesion(ctx, host, zc, False, sv.index, max_d, min_c, rng) is not None:
                    break

    level_lo, level_hi = REGION_LEVEL[region]
    level_mid = float(rng.uniform(level_lo, level_hi))
    level0 = level_mid - 0.5 * (z_lo + z_hi) / BODY_LEVEL_MM
    soft_window = SOFT_WINDOWS[0] if rng.random() < 0.8 else SOFT_WINDOWS[1]
    return SeriesPlan(
        layout=layout, name=name, region=region, width=width, height=height,
        spacing_mm=spacing, slice_interval_mm=dz, noise_hu=float(rng.uniform(10, 20)),
        smooth_sigma_px=float(rng.uniform(0.4, 0.7)), tex_sigma_px=float(rng.uniform(1.0, 2.0)),
        tex_corr_mm=float(rng.uniform(2.0, 4.0)), soft_window=soft_window, level0=level0,
        subvolumes=subvolumes, organs=organs, grid=grid, lesions=ctx.lesions,
        lookalikes=ctx.tubes, noise_seed=noise_seed)


def _gauss_kernel_sq_sum(sigma: float, ksize: int) -> float:
    k = cv2.getGaussianKernel(ksize, sigma).ravel()
    return float(np.sum(k * k))


def _paint(hu, tex, win, w, value, tex_value):
    x0, y0, x1, y1 = win
    view = hu[y0:y1, x0:x1]
    view += w * (np.float32(value) - view)
    view = tex[y0:y1, x0:x1]
    view += w * (np.float32(tex_value) - view)


def render_slice(plan: SeriesPlan, z_mm: float, texture: np.ndarray,
                 noise: np.ndarray) -> Tuple[np.ndarray, Dict[tuple, tuple]]:
    """HU image of the slice at ``z_mm`` and the visible objects' masks.

    Args:
        texture: (H, W) float32 unit-std smooth field, scaled per tissue.
        noise: (H, W) float32 standard normal field.

    Returns:
        (hu, masks): hu (H, W) float32 after noise and smoothing, not yet clipped; masks maps
        ('lesion', index) / ('lookalike', index) to (window, bool mask of weight >= 0.5,
        weight at the lesion centre pixel or None).
    """
    W, H = plan.width, plan.height
    grid = plan.grid
    dz = plan.slice_interval_mm
    hu = np.full((H, W), -1000.0, dtype=np.float32)
    tex = np.zeros((H, W), dtype=np.float32)
    # Look-alike tubes are clipped to their host tissues: one painter's pass gives all covers.
    covers = {la.host.tissues: np.zeros((H, W), dtype=np.float32) for la in plan.lookalikes}
    paint_anatomy(plan.organs, z_mm, grid, (0, 0, W, H), hu=hu, tex=tex, covers=covers)
    masks = {}
    for la in plan.lookalikes:
        tube = la.tube
        win, w = pv_weight(tube, z_mm, dz, grid, tube.edge_px)
        if win is None:
            continue
        cov = covers[la.host.tissues][win[1]:win[3], win[0]:win[2]]
        w *= cov
        _paint(hu, tex, win, w, la.hu, la.tex_hu)
        if la.lumen_hu is not None:
            win2, w2 = pv_weight(tube, z_mm, dz, grid, tube.edge_px,
                                 radius_scale=1.0 - la.wall_fraction)
            if win2 is not None:
                w2 *= cov[win2[1] - win[1]:win2[3] - win[1], win2[0] - win[0]:win2[2] - win[0]]
                _paint(hu, tex, win2, w2, la.lumen_hu, la.tex_hu)
        m = w >= 0.5
        if m.any():
            masks[('lookalike', la.index)] = (win, m, None)
    for les in plan.lesions:
        sh = les.shape
        win, w = pv_weight(sh, z_mm, dz, grid, sh.edge_px, sh.lobes)
        if win is None:
            continue
        _paint(hu, tex, win, w, les.hu, les.tex_hu)
        m = w >= 0.5
        if m.any():
            ix, iy = int(round(sh.cx)), int(round(sh.cy))
            wc = None
            if win[0] <= ix < win[2] and win[1] <= iy < win[3]:
                wc = float(w[iy - win[1], ix - win[0]])
            masks[('lesion', les.index)] = (win, m, wc)
    ksize = 5
    pre_noise = plan.noise_hu / _gauss_kernel_sq_sum(plan.smooth_sigma_px, ksize)
    img = hu + tex * texture + np.float32(pre_noise) * noise
    img = cv2.GaussianBlur(img, (ksize, ksize), plan.smooth_sigma_px,
                           borderType=cv2.BORDER_REFLECT)
    return img, masks


def hu_to_png_bytes(hu: np.ndarray) -> bytes:
    """16-bit PNG bytes of a HU image: raw = round(clip(HU, -1024, 3071)) + 32768."""
    raw = (np.rint(np.clip(hu, HU_MIN, HU_MAX)).astype(np.int32) + HU_OFFSET).astype(np.uint16)
    return encode_uint16_png(raw)


def _mask_box(win, m) -> Tuple[List[float], int]:
    ys, xs = np.nonzero(m)
    return ([float(xs.min() + win[0]), float(ys.min() + win[1]), float(xs.max() + win[0]),
             float(ys.max() + win[1])], int(len(xs)))


def _box_union(boxes):
    b = np.array(boxes, dtype=np.float64)
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]


def render_series(plan: SeriesPlan, out_dir: str) -> Tuple[dict, int]:
    """Write every slice of the series' sub-volumes; return per-object slice records.

    Returns ({(sub-volume index, 'lesion'|'lookalike', object index): {slice: record}}, number
    of slices written); a record holds the window, mask and centre weight of that slice.
    """
    rng = np.random.default_rng(plan.noise_seed)
    W, H = plan.width, plan.height
    dz = plan.slice_interval_mm
    tex_ksize = int(2 * math.ceil(3 * plan.tex_sigma_px) + 1)
    # White noise blurred by a separable kernel k has std sum(k^2): rescale to unit std.
    tex_norm = np.float32(1.0 / _gauss_kernel_sq_sum(plan.tex_sigma_px, tex_ksize))
    rho = math.exp(-dz / plan.tex_corr_mm)
    records: Dict[tuple, Dict[int, tuple]] = {}
    n_written = 0
    for sv in plan.subvolumes:
        field_prev = None
        for k in range(sv.start, sv.end + 1):
            white = rng.standard_normal((H, W), dtype=np.float32)
            g = cv2.GaussianBlur(white, (tex_ksize, tex_ksize), plan.tex_sigma_px,
                                 borderType=cv2.BORDER_REFLECT) * tex_norm
            field_now = g if field_prev is None else (
                np.float32(rho) * field_prev + np.float32(math.sqrt(1 - rho * rho)) * g)
            field_prev = field_now
            noise = rng.standard_normal((H, W), dtype=np.float32)
            img, masks = render_slice(plan, k * dz, field_now, noise)
            path = os.path.join(out_dir, 'Images_png', slice_file_name(plan.name, k))
            atomic_write_bytes(path, hu_to_png_bytes(img))
            n_written += 1
            for (kind, idx), rec in masks.items():
                records.setdefault((sv.index, kind, idx), {})[k] = rec
    return records, n_written


def _lesion_truth(plan: SeriesPlan, sv: SubVolume, les: Lesion, recs: Dict[int, tuple],
                  lesion_id: int) -> dict:
    sp, dz = plan.spacing_mm, plan.slice_interval_mm
    sh = les.shape
    W, H = plan.width, plan.height
    slices = []
    for k in sorted(recs):
        win, m, _ = recs[k]
        r = recist_from_mask(m, (sp, sp))
        recist = [_r3(v + o) for v, o in zip(r['long_axis'] + r['short_axis'],
                                             (win[0], win[1]) * 4)]
        box = [_r3(v) for v in recist_box(recist, RECIST_PAD_PX, (W, H))]
        mbox, area = _mask_box(win, m)
        slices.append(dict(slice=k, box=box, mask_box=mbox, area_px=area, recist=recist,
                           diameters_px=[round(r['long_px'], 4), round(r['short_px'], 4)]))
    if sh.zc_mm / dz < sv.start - 0.5 or sh.zc_mm / dz > sv.end + 0.5:
        raise RuntimeError(f'{sv.key}: lesion centre outside its sub-volume (internal error)')
    key = int(min(max(int(math.floor(sh.zc_mm / dz + 0.5)), sv.start), sv.end))
    by_slice = {s['slice']: s for s in slices}
    if key not in by_slice:
        raise RuntimeError(f'{sv.key}: lesion {les.index} not visible on its key slice {key} '
                           '(internal error)')
    ks = by_slice[key]
    # Geometry at full precision: lesion_mask_from_truth() re-renders the exact cross-sections.
    return dict(
        id=lesion_id, series_index=les.index, organ=les.host.name,
        lesion_type=les.host.lesion_type, kind=les.kind,
        center_px=[sh.cx, sh.cy], center_slice=sh.zc_mm / dz, center_z_mm=sh.zc_mm,
        radii_mm=[sh.a * sp, sh.b * sp, sh.c_mm], radii_px=[sh.a, sh.b],
        orientation_rad=sh.theta, orientation_deg=math.degrees(sh.theta),
        lobes=[[k_, e, p] for k_, e, p in sh.lobes], edge_px=sh.edge_px,
        hu=_r3(les.hu), host_hu=_r3(les.host_hu), contrast_hu=_r3(les.hu - les.host_hu),
        texture_hu=_r3(les.tex_hu), marked=les.marked, noisy=les.noisy, csv_row=None,
        key_slice=key, key_slice_relative=key - sv.start, recist=ks['recist'],
        diameters_px=ks['diameters_px'],
        diameters_mm=[round(ks['diameters_px'][0] * sp, 4), round(ks['diameters_px'][1] * sp, 4)],
        box2d=ks['box'],
        key_center_weight=None if recs[key][2] is None else _r3(recs[key][2]),
        slices=slices,
        box3d=_box_union([s['box'] for s in slices]) + [slices[0]['slice'], slices[-1]['slice']],
        mask_box3d=_box_union([s['mask_box'] for s in slices]) + [slices[0]['slice'],
                                                                   slices[-1]['slice']])


def _lookalike_truth(plan: SeriesPlan, la: LookAlike, recs: Dict[int, tuple],
                     lookalike_id: int) -> dict:
    slices = []
    for k in sorted(recs):
        win, m, _ = recs[k]
        mbox, area = _mask_box(win, m)
        slices.append(dict(slice=k, mask_box=mbox, area_px=area))
    t = la.tube
    return dict(
        id=lookalike_id, series_index=la.index, kind=la.kind, host=la.host.name,
        radius_mm=t.r_px * plan.spacing_mm, hu=la.hu, lumen_hu=la.lumen_hu,
        wall_fraction=la.wall_fraction if la.lumen_hu is not None else None,
        tube=dict(x0_px=t.x0, y0_px=t.y0, z0_mm=t.z0_mm, vx_px_per_mm=t.vx,
                  vy_px_per_mm=t.vy, amp_px=t.amp_px, period_mm=t.period_mm, phase=t.phase,
                  r_px=t.r_px, z_start_mm=t.z_start_mm, z_end_mm=t.z_end_mm,
                  edge_px=t.edge_px),
        num_slices=len(slices), slices=slices,
        box3d=_box_union([s['mask_box'] for s in slices]) + [slices[0]['slice'],
                                                              slices[-1]['slice']])


def lesion_mask_from_truth(lesion: dict, slice_index: int, slice_interval_mm: float,
                           image_size: Sequence[int]) -> np.ndarray:
    """Cross-section of a ``truth.json`` lesion on an absolute slice, as the generator drew it.

    Args:
        lesion: one entry of ``truth.json``'s ``volumes[i]['lesions']``.
        slice_index: absolute slice index.
        slice_interval_mm: the volume's slice interval (= slice thickness), mm.
        image_size: (W, H) px.

    Returns:
        (H, W) bool mask of the pixels whose partial-volume weight is >= 0.5 (0-based pixels);
        all False where the lesion does not reach the slice.
    """
    if lesion.get('origin') == 'real':
        raise ValueError(f'lesion {lesion.get("id")} is a real lesion (no analytic shape): use '
                         'mmlesion.synthetic.real_lesion_masks(volume) for its mask')
    w, h = (int(v) for v in image_size)
    shape = Ellipsoid(float(lesion['center_px'][0]), float(lesion['center_px'][1]),
                      float(lesion['center_z_mm']), float(lesion['radii_px'][0]),
                      float(lesion['radii_px'][1]), float(lesion['radii_mm'][2]),
                      float(lesion['orientation_rad']), float(lesion['edge_px']),
                      tuple((int(k), float(e), float(p)) for k, e, p in lesion['lobes']))
    zero = np.zeros((h, w), dtype=np.float32)
    grid = Grid(w, h, zero, zero)
    win, weight = pv_weight(shape, slice_index * float(slice_interval_mm),
                            float(slice_interval_mm), grid, shape.edge_px, shape.lobes)
    mask = np.zeros((h, w), dtype=bool)
    if win is not None:
        mask[win[1]:win[3], win[0]:win[2]] = weight >= 0.5
    return mask


def _perturbed_recist(recist: List[float], long_px: float, W: int, H: int,
                      rng: np.random.Generator) -> List[float]:
    """A sloppy RECIST mark for a Possibly_noisy row: endpoints off by ~15% of the long axis."""
    pts = np.array(recist, dtype=np.float64).reshape(4, 2)
    pts += rng.normal(0.0, 0.15 * max(long_px, 4.0), size=pts.shape)
    pts[:, 0] = np.clip(pts[:, 0], 0, W - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, H - 1)
    return [_r3(v) for v in pts.ravel()]


def add_dl_info_rows(rows: List[list], vol_lesions: List[dict], *, seed: int,
                     layout: SeriesLayout, name: str, width: int, height: int,
                     spacing_mm: float, slice_interval_mm: float, slice_range: Sequence[int],
                     body_level: Callable[[int], float],
                     window_for: Callable[[str], Tuple[int, int]]) -> None:
    """Append the DL_info.csv rows of a sub-volume's marked lesions, setting their ``csv_row``.

    ``vol_lesions`` are ``truth.json`` lesion dicts (0-based); the rows are 1-based like
    DeepLesion.  A ``noisy`` lesion's row gets a perturbed RECIST mark (its truth keeps the true
    one and records the written one in ``csv_recist`` / ``csv_box``).  ``body_level(key)`` is
    the normalised z of a key slice, ``window_for(organ)`` its DICOM window (HU).
    """
    sp, dz = spacing_mm, slice_interval_mm
    split = layout.split
    for les_t in vol_lesions:
        if not les_t['marked']:
            continue
        recist = les_t['recist']
        long_px, short_px = les_t['diameters_px']
        box = les_t['box2d']
        if les_t['noisy']:
            noise_rng = np.random.default_rng(np.random.SeedSequence(
                [int(seed), 3, layout.patient, layout.study, layout.series,
                 les_t['series_index']]))
            recist = _perturbed_recist(recist, long_px, width, height, noise_rng)
            long_px = math.hypot(recist[2] - recist[0], recist[3] - recist[1])
            short_px = math.hypot(recist[6] - recist[4], recist[7] - recist[5])
            box = [_r3(v) for v in recist_box(recist, RECIST_PAD_PX, (width, height))]
            les_t['csv_recist'] = recist
            les_t['csv_box'] = box
        key = les_t['key_slice']
        cxn = 0.5 * (recist[0] + recist[2]) / width
        cyn = 0.5 * (recist[1] + recist[3]) / height
        zn = body_level(key)
        lo, hi = window_for(les_t['organ'])
        rows.append([
            f'{name}_{key:03d}.png', layout.patient, layout.study, layout.series,
            key, ', '.join(_f3(v + 1.0) for v in recist),
            ', '.join(_f3(v + 1.0) for v in box),
            f'{_g(long_px)}, {_g(short_px)}',
            ', '.join(_g(round(v, 6)) for v in (cxn, cyn, zn)),
            -1 if split == 'train' else les_t['lesion_type'], int(les_t['noisy']),
            f'{slice_range[0]}, {slice_range[1]}', f'{_g(sp)}, {_g(sp)}, {_g(dz)}',
            f'{width}, {height}', f'{lo}, {hi}', layout.gender or '',
            '' if layout.age is None else layout.age, SPLIT_CODE[split]])
        les_t['csv_row'] = len(rows)


def _lh_box(box0: Sequence[float], z_rel: float) -> list:
    """A Lesion Harvester box: 1-based x/y, relative z, numpy float64 values like the releases."""
    return [np.float64(_r3(v + 1.0)) for v in box0] + [np.float64(z_rel), np.float64(z_rel)]


def prepare_output_dir(out_dir, overwrite: bool) -> str:
    """Make ``out_dir/{Images_png,ground_truth}``; refuse to mix with an existing dataset.

    With ``overwrite`` an earlier dataset's image and ground-truth folders are removed first, so
    no stale slice survives; without it an existing dataset is an error and nothing is touched.
    """
    out_dir = os.fspath(out_dir)
    existing = [p for p in ('DL_info.csv', 'Images_png', 'ground_truth')
                if os.path.exists(os.path.join(out_dir, p))]
    if existing and not overwrite:
        raise FileExistsError(f'{out_dir} already holds a dataset ({", ".join(existing)}); '
                              'choose another folder or pass overwrite=True (--overwrite)')
    for sub in ('Images_png', 'ground_truth'):
        if overwrite and os.path.isdir(os.path.join(out_dir, sub)):
            shutil.rmtree(os.path.join(out_dir, sub))
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    return out_dir


def generate_dataset(out_dir: str, num_volumes: int, seed: int = 0, image_size: int = 512,
                     slice_intervals_mm: Optional[Sequence[float]] = None,
                     max_slices: int = 40, small_image_fraction: float = 0.1,
                     noisy_fraction: float = 0.02, overwrite: bool = False,
                     verbose: bool = False, anatomy: str = 'phantom',
                     real_ct_dir: Optional[str] = None, held_out: str = 'lung1',
                     workers: Optional[int] = None) -> dict:
    """Generate ``num_volumes`` synthetic sub-volumes in DeepLesion's format under ``out_dir``.

    Args:
        out_dir: output folder (created).  Refused if it already holds a dataset, unless
            ``overwrite`` (which removes ``Images_png/`` and ``ground_truth/`` first).
        num_volumes: number of sub-volumes (>= 1); every split is non-empty from 3 on, V_M and
            V_H^test once there are 3 and 4 training sub-volumes (about 10 sub-volumes).
        seed: the same seed gives the same bytes.
        image_size: nominal image width = height in px (>= 96); about ``small_image_fraction``
            of the series are 0.75 times smaller (not below 96 px).  Phantom anatomy scales with
            the image, pixel spacing stays 0.6-0.98 mm and lesion diameters are 5-50 mm (capped
            at 50 * sqrt(image_size / 512) mm).  Real anatomy is resampled to this size and its
            spacing adjusted (so it stays physically right).
        slice_intervals_mm: allowed slice intervals (default 1, 1.25, 2, 2.5, 5 weighted toward
            5 and 2.5).  Phantom only: real anatomy keeps its real 5 mm slices.
        max_slices: most slices in one sub-volume (>= 3); thin-slice sub-volumes then span less
            than +-30 mm around their key slices.
        noisy_fraction: fraction of DL_info rows flagged ``Possibly_noisy`` (their RECIST mark is
            perturbed; the ground truth keeps the true one).
        anatomy: ``'phantom'`` (analytic CT-like phantoms) or ``'real'`` (synthetic lesions and
            look-alikes inserted into augmented windows of the two real chest CTs, see
            :mod:`.real_anatomy`).
        real_ct_dir: folder of ``lung{1,2}_{image,label}.nrrd`` (``anatomy='real'``); default
            ``$MMLESION_SHARED_DATA/real_ct`` or ``../shared/data/real_ct`` beside the repo.
        held_out: ``anatomy='real'``: the real volume reserved for the test split
            (``'lung1'`` or ``'lung2'``); the other one gives train and val.
        workers: processes rendering series in parallel (default: the CPUs this process may
            use; 1: no extra process).  The same seed gives the same bytes for any number.

    Returns:
        the summary dict, also written to ``out_dir/summary.json``.
    """
    t0 = time.time()
    if anatomy not in ANATOMIES:
        raise ValueError(f'anatomy must be one of {ANATOMIES}, got {anatomy!r}')
    if int(num_volumes) < 1:
        raise ValueError(f'num_volumes must be >= 1, got {num_volumes}')
    if int(image_size) < MIN_IMAGE_SIZE:
        raise ValueError(f'image_size must be >= {MIN_IMAGE_SIZE} px (5 mm lesions need room in '
                         f'the organs), got {image_size}')
    if int(max_slices) < 3:
        raise ValueError(f'max_slices must be >= 3, got {max_slices}')
    if anatomy == 'real' and slice_intervals_mm is not None:
        raise ValueError('anatomy="real" keeps the real volumes\' 5 mm slice interval; do not '
                         'pass slice_intervals_mm (--slices-mm)')
    intervals = tuple(float(v) for v in (slice_intervals_mm or SLICE_INTERVALS_MM))
    if not intervals or any(not (v > 0 and math.isfinite(v)) for v in intervals):
        raise ValueError(f'slice intervals must be positive mm values, got {slice_intervals_mm!r}')
    if not 0.0 <= small_image_fraction <= 1.0 or not 0.0 <= noisy_fraction <= 1.0:
        raise ValueError('small_image_fraction and noisy_fraction must lie in [0, 1]')
    sources = None
    if anatomy == 'real':
        from .real_anatomy import load_sources
        sources = load_sources(real_ct_dir, held_out)  # fails before anything is written
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    out_dir = prepare_output_dir(out_dir, overwrite)

    if anatomy == 'real':
        from .real_anatomy import generate_real_volumes
        rows, truth_volumes, n_slices, real_info = generate_real_volumes(
            out_dir, sources, int(num_volumes), int(seed), int(image_size), int(max_slices),
            small_image_fraction, noisy_fraction, held_out, verbose, t0, workers)
    else:
        rows, truth_volumes, n_slices = _generate_phantom_volumes(
            out_dir, int(num_volumes), int(seed), int(image_size), intervals, int(max_slices),
            small_image_fraction, noisy_fraction, verbose, t0, workers)

    _write_dl_info(os.path.join(out_dir, 'DL_info.csv'), rows)
    gt_counts = _write_ground_truth(os.path.join(out_dir, 'ground_truth'), truth_volumes)
    info = dict(
        generator='mmlesion.datasets.synthetic', format_version=1, seed=int(seed),
        num_volumes=int(num_volumes), image_size=int(image_size), max_slices=int(max_slices),
        slice_intervals_mm=list(intervals), noisy_fraction=noisy_fraction,
        small_image_fraction=small_image_fraction,
        frames={
            'x_y': '0-based pixels, pixel centres at integers (x = column, y = row); '
                   'DL_info.csv and the pickles are 1-based: they hold these values + 1',
            'slice': 'absolute DeepLesion slice index (file names, Slice_range); the pickles '
                     'hold z relative to the sub-volume start (slice - slice_range[0])',
            'z_mm': 'series frame: absolute slice k lies at k * slice_interval mm',
            'box': 'RECIST extent padded by 5 px and clipped to [0, W-1] x [0, H-1] '
                   '(DeepLesion Bounding_boxes convention), x1, y1, x2, y2',
            'mask_box': 'extreme pixel centres of the cross-section (pixels whose '
                        'partial-volume weight is >= 0.5), x1, y1, x2, y2',
            'recist': 'long axis x1, y1, x2, y2 then short axis x1, y1, x2, y2 measured on the '
                      'cross-section with mmlesion.datasets.recist.recist_from_mask',
            'box3d': 'x1, y1, x2, y2 (union of the per-slice boxes of a lesion, of the '
                     'per-slice mask boxes of a look-alike) then the first and last absolute '
                     'slice where the object is visible in the sub-volume',
            'tube': 'look-alike path: centre (px) = (x0, y0) + (z - z0) * (vx, vy) + amp * '
                    'sin(2 pi (z - z0) / period + phase) * unit normal of (vx, vy); z in mm',
            'radii_mm': 'ellipsoid semi-axes a >= b in-plane and c along z, mm',
            'orientation_deg': 'angle of the a axis from +x towards +y (image rows go down)',
            'hu': 'lesion interior HU before texture, noise and smoothing; host_hu: clean '
                  'anatomy HU at the centre; contrast_hu = hu - host_hu',
            'key_slice': 'slice nearest the lesion centre (its largest cross-section); for marked '
                         'lesions the DL_info key slice',
            'lesion_type': 'DeepLesion coarse type 1..8 (DL_info writes -1 for the train split)',
        })
    if anatomy == 'real':
        real_frames = real_info.pop('frames', {})
        info.update(real_info)
        info['frames'].update(real_frames)
    atomic_dump_json(dict(info=info, volumes=truth_volumes),
                     os.path.join(out_dir, 'ground_truth', 'truth.json'))
    summary = _summary(truth_volumes, rows, n_slices, gt_counts)
    summary.update(seed=int(seed), image_size=int(image_size), anatomy=anatomy,
                   generation_time_s=round(time.time() - t0, 3))
    if anatomy == 'real':
        summary.update(_real_summary(truth_volumes))
    atomic_dump_json(summary, os.path.join(out_dir, 'summary.json'), indent=2)
    return summary


def _real_summary(volumes: List[dict]) -> dict:
    real = [les for v in volumes for les in v['lesions'] if les.get('origin') == 'real']
    per_source: Dict[str, Dict[str, int]] = {}
    for v in volumes:
        d = per_source.setdefault(v['source_volume'], {})
        d[v['split']] = d.get(v['split'], 0) + 1
    return dict(volumes_per_source=dict(sorted(per_source.items())),
                real_lesions=len(real), real_lesions_marked=sum(les['marked'] for les in real))


def _phantom_body_level(level0: float, dz: float, key: int) -> float:
    return level0 + key * dz / BODY_LEVEL_MM


def _phantom_window_for(soft_window: Tuple[int, int], organ_name: str) -> Tuple[int, int]:
    if organ_name == 'lung':
        return LUNG_WINDOW
    if organ_name == 'bone':
        return BONE_WINDOW
    return soft_window


def _phantom_series_volumes(layout: SeriesLayout, out_dir: str, seed: int, image_size: int,
                            intervals: Sequence[float], max_slices: int,
                            small_image_fraction: float, noisy_fraction: float
                            ) -> Tuple[List[Tuple[dict, dict]], int]:
    """Plan and render one phantom series: its ``(truth volume, DL_info row arguments)`` per
    sub-volume (lesion and look-alike ids local, see :func:`assemble_series`) and the slices
    written.  Depends only on the seed and the layout."""
    plan = plan_series(layout, seed, image_size, intervals, max_slices,
                       small_image_fraction, noisy_fraction)
    records, written = render_series(plan, out_dir)
    sp, dz = plan.spacing_mm, plan.slice_interval_mm
    out = []
    for sv in plan.subvolumes:
        vol_lesions = []
        for les in plan.lesions:
            recs = records.get((sv.index, 'lesion', les.index))
            if les.subvolume != sv.index:
                if recs:
                    raise RuntimeError(f'{sv.key}: lesion of another sub-volume visible '
                                       '(internal error)')
                continue
            if not recs:
                if les.marked:
                    raise RuntimeError(f'{sv.key}: marked lesion invisible (internal error)')
                continue  # an unmarked lesion too thin to show on any slice: not in the data
            vol_lesions.append(_lesion_truth(plan, sv, les, recs, len(vol_lesions)))
        vol_lookalikes = []
        for la in plan.lookalikes:
            recs = records.get((sv.index, 'lookalike', la.index))
            if recs:
                vol_lookalikes.append(_lookalike_truth(plan, la, recs, len(vol_lookalikes)))
        volume = dict(
            key=sv.key, series=plan.name, patient_index=layout.patient,
            study_index=layout.study, series_id=layout.series, subvolume_index=sv.index,
            slice_range=[sv.start, sv.end], num_slices=sv.end - sv.start + 1,
            spacing=[sp, sp, dz], slice_interval=dz, image_size=[plan.width, plan.height],
            split=layout.split, role=sv.role, complete=sv.role != 'V_H', region=plan.region,
            noise_hu=_r3(plan.noise_hu), soft_window=list(plan.soft_window),
            gender=layout.gender, age=layout.age,
            marked_key_slices=sv.key_slices, lesions=vol_lesions,
            lookalikes=vol_lookalikes)
        row_args = dict(
            layout=layout, name=plan.name, width=plan.width, height=plan.height, spacing_mm=sp,
            slice_interval_mm=dz, slice_range=(sv.start, sv.end),
            body_level=functools.partial(_phantom_body_level, plan.level0, dz),
            window_for=functools.partial(_phantom_window_for, tuple(plan.soft_window)))
        out.append((volume, row_args))
    return out, written


# (build, args) of the running map_series, read by its forked workers (inherited, not pickled)
_MAP_STATE: Optional[tuple] = None


def _map_worker(layout):
    build, args = _MAP_STATE
    return build(layout, *args)


def default_workers() -> int:
    """Generator worker processes by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_series(build: Callable, layouts: Sequence, args: tuple, workers: int) -> Iterator:
    """``build(layout, *args)`` for every layout, yielded in layout order.

    ``workers`` > 1 runs them in that many forked processes (the real CTs and other ``args``
    are inherited, not pickled); every series draws from its own seed, so the results do not
    depend on ``workers``.  Falls back to this process where fork is unavailable."""
    global _MAP_STATE
    workers = min(int(workers), len(layouts))
    if workers <= 1 or 'fork' not in multiprocessing.get_all_start_methods():
        for layout in layouts:
            yield build(layout, *args)
        return
    _MAP_STATE = (build, args)
    try:
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            yield from pool.imap(_map_worker, layouts, chunksize=1)
    finally:
        _MAP_STATE = None


def assemble_series(series_outputs: Iterable[Tuple[List[Tuple[dict, dict]], int]], *,
                    seed: int, num_volumes: int, what: str, verbose: bool, t0: float
                    ) -> Tuple[List[list], List[dict], int]:
    """Number the lesions and look-alikes of the series (in order) and write their DL_info
    rows; returns (DL_info rows, truth volumes, slices written)."""
    rows: List[list] = []
    volumes: List[dict] = []
    n_slices = lesion_id = lookalike_id = 0
    step = max(1, num_volumes // 10)
    next_report = step
    for series_volumes, written in series_outputs:
        n_slices += written
        for volume, row_args in series_volumes:
            for les in volume['lesions']:
                les['id'] = lesion_id
                lesion_id += 1
            for la in volume['lookalikes']:
                la['id'] = lookalike_id
                lookalike_id += 1
            add_dl_info_rows(rows, volume['lesions'], seed=seed, **row_args)
            volumes.append(volume)
        if verbose and (len(volumes) >= next_report or len(volumes) == num_volumes):
            next_report = (len(volumes) // step + 1) * step
            print(f'[make_synthetic] {len(volumes)}/{num_volumes} {what}sub-volumes, '
                  f'{n_slices} slices, {time.time() - t0:.1f} s', flush=True)
    return rows, volumes, n_slices


def _generate_phantom_volumes(out_dir: str, num_volumes: int, seed: int, image_size: int,
                              intervals: Sequence[float], max_slices: int,
                              small_image_fraction: float, noisy_fraction: float,
                              verbose: bool, t0: float, workers: int = 1
                              ) -> Tuple[List[list], List[dict], int]:
    """Render the phantom series; returns (DL_info rows, truth volumes, slices written)."""
    layouts = plan_layout(num_volumes, seed)
    args = (out_dir, seed, image_size, intervals, max_slices, small_image_fraction,
            noisy_fraction)
    return assemble_series(map_series(_phantom_series_volumes, layouts, args, workers),
                           seed=seed, num_volumes=num_volumes, what='', verbose=verbose, t0=t0)


def _write_dl_info(path: str, rows: List[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(DL_INFO_HEADER)
    writer.writerows(rows)
    with atomic_open(path, 'w') as f:
        f.write(buf.getvalue())


def _write_ground_truth(gt_dir: str, volumes: List[dict]) -> Dict[str, int]:
    """The Lesion Harvester pickles; returns the number of boxes in each."""
    revised = {name: {} for name in GT_FILES.values()}
    recist = {'RECIST-Box-Valid.pkl': {}, 'RECIST-Box-Test.pkl': {}}
    box3d = {}
    for vol in volumes:
        start = vol['slice_range'][0]
        name = GT_FILES.get(vol['role'])
        if name is not None:
            per_z: Dict[int, list] = {}
            for les in vol['lesions']:
                z = les['key_slice'] - start
                per_z.setdefault(int(z), []).append(_lh_box(les['box2d'], z))
            revised[name][vol['key'] + '.annot'] = dict(sorted(per_z.items()))
        if vol['split'] in ('val', 'test'):
            name = 'RECIST-Box-Valid.pkl' if vol['split'] == 'val' else 'RECIST-Box-Test.pkl'
            per_z = {}
            for les in vol['lesions']:
                if les['marked'] and not les['noisy']:
                    z = les['key_slice'] - start
                    per_z.setdefault(int(z), []).append(_lh_box(les['box2d'], z))
            if per_z:
                recist[name][vol['key']] = dict(sorted(per_z.items()))
        if vol['split'] == 'test':
            box3d[vol['key']] = [
                [np.float64(_r3(v + 1.0)) for v in les['box3d'][:4]]
                + [np.float64(les['box3d'][4] - start), np.float64(les['box3d'][5] - start)]
                for les in vol['lesions']]
    counts = {}
    for name, data in list(revised.items()) + list(recist.items()):
        atomic_dump_pickle(data, os.path.join(gt_dir, name))
        counts[name] = sum(len(b) for v in data.values() for b in v.values())
    atomic_dump_pickle(box3d, os.path.join(gt_dir, '3D-Box.pkl'))
    counts['3D-Box.pkl'] = sum(len(v) for v in box3d.values())
    return counts


def _summary(volumes: List[dict], rows: List[list], n_slices: int,
             gt_counts: Dict[str, int]) -> dict:
    def count(key):
        out = {}
        for v in volumes:
            out[v[key]] = out.get(v[key], 0) + 1
        return dict(sorted(out.items()))

    lesions = [les for v in volumes for les in v['lesions']]
    lookalikes = [la for v in volumes for la in v['lookalikes']]
    marked = sum(les['marked'] for les in lesions)
    by_type = {}
    for les in lesions:
        by_type[str(les['lesion_type'])] = by_type.get(str(les['lesion_type']), 0) + 1
    intervals = {}
    for v in volumes:
        k = _g(v['slice_interval'])
        intervals[k] = intervals.get(k, 0) + 1
    return dict(
        volumes=len(volumes), series=len({v['series'] for v in volumes}),
        patients=len({v['patient_index'] for v in volumes}),
        volumes_per_split=count('split'), volumes_per_role=count('role'),
        volumes_per_region=count('region'), slice_intervals=dict(sorted(intervals.items())),
        image_sizes=dict(sorted(
            {f'{w}x{h}': sum(1 for v in volumes if v['image_size'] == [w, h])
             for w, h in {tuple(v['image_size']) for v in volumes}}.items())),
        lesions=len(lesions), marked_lesions=marked,
        marked_fraction=round(marked / len(lesions), 4) if lesions else 0.0,
        lesions_per_type=dict(sorted(by_type.items(), key=lambda kv: int(kv[0]))),
        dl_info_rows=len(rows), noisy_rows=sum(1 for r in rows if r[10] == 1),
        distinct_key_slices=len({r[0] for r in rows}), slices_written=n_slices,
        lookalikes=len(lookalikes),
        lookalikes_per_kind={k: sum(1 for la in lookalikes if la['kind'] == k)
                             for k in sorted({la['kind'] for la in lookalikes})},
        ground_truth_boxes=gt_counts)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate synthetic CT sub-volumes in the NIH DeepLesion format '
        '(16-bit PNG slices, DL_info.csv) with complete ground truth (Lesion Harvester pickles, '
        'truth.json).')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--volumes', type=int, required=True, help='number of sub-volumes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--image-size', type=int, default=512,
                        help='nominal image width = height in px (default 512)')
    parser.add_argument('--slices-mm', type=float, nargs='+', default=None,
                        help='allowed slice intervals in mm (default 1 1.25 2 2.5 5)')
    parser.add_argument('--max-slices', type=int, default=40,
                        help='most slices per sub-volume (default 40)')
    parser.add_argument('--small-image-fraction', type=float, default=0.1)
    parser.add_argument('--noisy-fraction', type=float, default=0.02)
    parser.add_argument('--anatomy', choices=ANATOMIES, default='phantom',
                        help='phantom: analytic CT-like phantoms; real: synthetic lesions and '
                        'look-alikes inserted into augmented windows of the two real chest CTs '
                        '(default phantom)')
    parser.add_argument('--real-ct-dir', default=None,
                        help='--anatomy real: folder of lung{1,2}_{image,label}.nrrd (default '
                        '$MMLESION_SHARED_DATA/real_ct or ../shared/data/real_ct beside the repo)')
    parser.add_argument('--held-out', default='lung1', choices=('lung1', 'lung2'),
                        help='--anatomy real: the real volume that gives the test split (the '
                        'other gives train and val; default lung1)')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes rendering series in parallel (default: the CPUs '
                        'available; the output bytes do not depend on it)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a dataset already in --out')
    parser.add_argument('--quiet', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    summary = generate_dataset(
        args.out, args.volumes, seed=args.seed, image_size=args.image_size,
        slice_intervals_mm=args.slices_mm, max_slices=args.max_slices,
        small_image_fraction=args.small_image_fraction, noisy_fraction=args.noisy_fraction,
        overwrite=args.overwrite, verbose=not args.quiet, anatomy=args.anatomy,
        real_ct_dir=args.real_ct_dir, held_out=args.held_out, workers=args.workers)
    if not args.quiet:
        print(f"[make_synthetic] wrote {summary['volumes']} sub-volumes "
              f"({summary['slices_written']} slices, {summary['lesions']} lesions, "
              f"{summary['marked_lesions']} marked, {summary['lookalikes']} look-alikes) to "
              f"{args.out} in {summary['generation_time_s']:.1f} s", file=sys.stderr)
    return summary
