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

Patient numbers are outside DeepLesion's 1-4427, so a synthetic series or key can never be
mistaken for a real one: phantom patients are 900001-904427 (``PATIENT_BASE`` + 1-4427 in
:mod:`.layout`), the real-anatomy volumes patients 9001 (lung1) and 9002 (lung2).

Determinism: the layout (patients, splits, roles) comes from a generator seeded with
``(seed, layout stream)``; each series draws its phantom, lesions and noise from generators
seeded with ``(seed, 1, draw_index(patient), study, series)`` (:func:`.layout.draw_index`: the
patient number without ``PATIENT_BASE``), independent of every other series' draws.
The sub-volumes of one series share that series' phantom: they are two slice ranges of one scan.
The same seed gives the same bytes, for any number of ``workers`` (series are rendered in forked
processes and numbered and written to DL_info.csv in series order).

This module holds :func:`generate_dataset` and the phantom mode; the real-anatomy mode is
:mod:`.real_anatomy`, what both share is :mod:`.series` and the file formats :mod:`.writer`.
"""

import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.png_codec import hu_to_png_clipped
from mmlesion.structures.volume_key import series_name, slice_file_name, volume_key
from mmlesion.utils.fileio import atomic_dump_json, atomic_write_bytes

from .layout import SeriesLayout, draw_index, plan_layout
from .lesions import MAX_DIAMETER_MM, Lesion, LookAlike, PlacementContext, place_lesion, place_tube
from .phantom import (
    BODY_LEVEL_MM,
    LESION_HOSTS,
    REGION_LEVEL,
    REGION_WEIGHTS,
    REGIONS,
    TUBE_HOSTS,
    build_anatomy,
    make_grid,
)
from .series import (
    MARKED_PER_VOLUME,
    MIN_IMAGE_SIZE,
    UNMARKED_MEAN,
    SubVolume,
    assemble_series,
    default_workers,
    gauss_kernel_sq_sum,
    lesion_truth,
    lookalike_truth,
    map_series,
)
from .shapes import Ellipsoid, Grid, paint_anatomy, pv_weight
from .writer import (
    BONE_WINDOW,
    LUNG_WINDOW,
    SOFT_WINDOWS,
    format_number,
    prepare_output_dir,
    round3,
    write_dl_info,
    write_ground_truth,
)

# DeepLesion's slice intervals, weighted toward 5 and 2.5 mm like the dataset.
SLICE_INTERVALS_MM = (1.0, 1.25, 2.0, 2.5, 5.0)
SLICE_INTERVAL_WEIGHTS = (0.12, 0.05, 0.13, 0.25, 0.45)
ANATOMIES = ('phantom', 'real')
HALF_RANGE_MM = 30.0  # DeepLesion releases about +-30 mm around key slices
# The ``generator`` name written into truth.json: the package's name when the format was fixed.
# It identifies the format of the files, not where the code lives, so it stays as it is (a
# changed string would change every dataset's bytes).
GENERATOR_FORMAT_NAME = 'mmlesion.datasets.synthetic'


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


def _choose_interval(rng: np.random.Generator, allowed: Sequence[float]) -> float:
    table = dict(zip(SLICE_INTERVALS_MM, SLICE_INTERVAL_WEIGHTS))
    weights = np.array([table.get(float(a), 1.0 / len(allowed)) for a in allowed])
    return float(allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))])


def plan_series(layout: SeriesLayout, seed: int, image_size: int,
                slice_intervals_mm: Sequence[float], max_slices: int,
                small_image_fraction: float, noisy_fraction: float) -> SeriesPlan:
    """Draw everything about one series except its pixels: geometry, lesions, look-alikes."""
    ss = np.random.SeedSequence([int(seed), 1, draw_index(layout.patient), layout.study,
                                 layout.series])
    geo_seed, noise_seed = ss.spawn(2)
    rng = np.random.default_rng(geo_seed)
    region = REGIONS[int(rng.choice(len(REGIONS), p=REGION_WEIGHTS))]
    size = image_size
    if rng.random() < small_image_fraction:
        size = max(MIN_IMAGE_SIZE, int(round(0.75 * image_size / 2.0)) * 2)
    width = height = size
    fov_mm = int(rng.integers(308, 502))  # spacing = FOV / 512: 0.6-0.98 mm/px
    spacing = float(format_number(fov_mm / 512.0))
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
    pre_noise = plan.noise_hu / gauss_kernel_sq_sum(plan.smooth_sigma_px, ksize)
    img = hu + tex * texture + np.float32(pre_noise) * noise
    img = cv2.GaussianBlur(img, (ksize, ksize), plan.smooth_sigma_px,
                           borderType=cv2.BORDER_REFLECT)
    return img, masks


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
    tex_norm = np.float32(1.0 / gauss_kernel_sq_sum(plan.tex_sigma_px, tex_ksize))
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
            atomic_write_bytes(path, hu_to_png_clipped(img))
            n_written += 1
            for (kind, idx), rec in masks.items():
                records.setdefault((sv.index, kind, idx), {})[k] = rec
    return records, n_written


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
            :func:`mmlesion.utils.locations.find_real_ct_dir`'s search.
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
        # imported for this mode only: it needs scipy, and the phantoms do not
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

    write_dl_info(os.path.join(out_dir, 'DL_info.csv'), rows)
    gt_counts = write_ground_truth(os.path.join(out_dir, 'ground_truth'), truth_volumes)
    info = dict(
        generator=GENERATOR_FORMAT_NAME, format_version=1, seed=int(seed),
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
            vol_lesions.append(lesion_truth(plan, sv, les, recs, len(vol_lesions)))
        vol_lookalikes = []
        for la in plan.lookalikes:
            recs = records.get((sv.index, 'lookalike', la.index))
            if recs:
                vol_lookalikes.append(lookalike_truth(plan, la, recs, len(vol_lookalikes)))
        volume = dict(
            key=sv.key, series=plan.name, patient_index=layout.patient,
            study_index=layout.study, series_id=layout.series, subvolume_index=sv.index,
            slice_range=[sv.start, sv.end], num_slices=sv.end - sv.start + 1,
            spacing=[sp, sp, dz], slice_interval=dz, image_size=[plan.width, plan.height],
            split=layout.split, role=sv.role, complete=sv.role != 'V_H', region=plan.region,
            noise_hu=round3(plan.noise_hu), soft_window=list(plan.soft_window),
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
        k = format_number(v['slice_interval'])
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
