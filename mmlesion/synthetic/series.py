"""What the phantom and the real-anatomy modes share: sub-volumes, truth records, DL_info rows and
the series map.

A *series* is rendered by one mode (:mod:`.generator` for phantoms, :mod:`.real_anatomy` for
real CT backgrounds) into ``(truth volume, DL_info row arguments)`` pairs, one per sub-volume.
:func:`map_series` runs the series (in forked worker processes when asked) and
:func:`assemble_series` numbers their lesions and look-alikes in series order and builds the
DL_info rows, so the output does not depend on the number of workers.

Frames: pixels 0-based with pixel centres at integers (x = column, y = row); slices are absolute
DeepLesion slice indices (1-based like the file names); z in mm in the series frame (absolute
slice ``k`` at ``k * slice_interval_mm``).  The DL_info rows are 1-based (:mod:`.writer`).
"""
import math
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.recist import recist_box, recist_from_mask

from .layout import SeriesLayout, draw_index
from .lesions import Lesion, LookAlike
from .writer import RECIST_PAD_PX, SPLIT_CODE, format_coord, format_number, round3

MIN_IMAGE_SIZE = 96  # px; smaller phantoms leave no room for 5 mm lesions beside the tubes
MARKED_PER_VOLUME = ((1, 2, 3), (0.6, 0.3, 0.1))
UNMARKED_MEAN = 1.85  # Poisson mean of unmarked lesions per sub-volume: about 45% marked


@dataclass
class SubVolume:
    index: int  # within the series
    start: int  # absolute slice index, inclusive
    end: int  # absolute slice index, inclusive
    key_slices: List[int]  # absolute key slices of the marked lesions, one per marked lesion
    role: str
    key: str = ''


class SeriesGeometry(NamedTuple):
    """The pixel grid of a series' output images (a phantom ``SeriesPlan`` has the same fields)."""
    width: int  # px
    height: int  # px
    spacing_mm: float  # x = y, mm/px
    slice_interval_mm: float


def gauss_kernel_sq_sum(sigma: float, ksize: int) -> float:
    """Sum of squares of OpenCV's 1D Gaussian kernel: the std of white noise after a separable
    blur with it (divide by it to get unit std again)."""
    k = cv2.getGaussianKernel(ksize, sigma).ravel()
    return float(np.sum(k * k))


def _mask_box(win, m) -> Tuple[List[float], int]:
    ys, xs = np.nonzero(m)
    return ([float(xs.min() + win[0]), float(ys.min() + win[1]), float(xs.max() + win[0]),
             float(ys.max() + win[1])], int(len(xs)))


def _box_union(boxes):
    b = np.array(boxes, dtype=np.float64)
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]


def lesion_truth(plan: SeriesGeometry, sv: SubVolume, les: Lesion, recs: Dict[int, tuple],
                 lesion_id: int) -> dict:
    """The ``truth.json`` record of a synthetic lesion from its rendered cross-sections.

    Args:
        plan: the series' pixel grid (a :class:`SeriesGeometry` or a phantom ``SeriesPlan``).
        sv: the sub-volume the lesion belongs to.
        recs: ``{absolute slice: (window, bool mask of weight >= 0.5, centre weight or None)}``
            of every slice the lesion shows on, as the renderers record them.
        lesion_id: its id (renumbered by :func:`assemble_series`).

    Returns:
        dict with the lesion's geometry (px / mm, 0-based, absolute slices), its key slice
        (nearest its centre), RECIST measured on the key cross-section, ``box2d`` (RECIST
        extent + 5 px), per-slice records and the 3D boxes.
    """
    sp, dz = plan.spacing_mm, plan.slice_interval_mm
    sh = les.shape
    W, H = plan.width, plan.height
    slices = []
    for k in sorted(recs):
        win, m, _ = recs[k]
        r = recist_from_mask(m, (sp, sp))
        recist = [round3(v + o) for v, o in zip(r['long_axis'] + r['short_axis'],
                                             (win[0], win[1]) * 4)]
        box = [round3(v) for v in recist_box(recist, RECIST_PAD_PX, (W, H))]
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
        hu=round3(les.hu), host_hu=round3(les.host_hu), contrast_hu=round3(les.hu - les.host_hu),
        texture_hu=round3(les.tex_hu), marked=les.marked, noisy=les.noisy, csv_row=None,
        key_slice=key, key_slice_relative=key - sv.start, recist=ks['recist'],
        diameters_px=ks['diameters_px'],
        diameters_mm=[round(ks['diameters_px'][0] * sp, 4), round(ks['diameters_px'][1] * sp, 4)],
        box2d=ks['box'],
        key_center_weight=None if recs[key][2] is None else round3(recs[key][2]),
        slices=slices,
        box3d=_box_union([s['box'] for s in slices]) + [slices[0]['slice'], slices[-1]['slice']],
        mask_box3d=_box_union([s['mask_box'] for s in slices]) + [slices[0]['slice'],
                                                                   slices[-1]['slice']])


def lookalike_truth(plan: SeriesGeometry, la: LookAlike, recs: Dict[int, tuple],
                    lookalike_id: int) -> dict:
    """The ``truth.json`` record of a look-alike tube from its rendered cross-sections (``recs``
    as in :func:`lesion_truth`): its path, per-slice mask boxes (0-based) and 3D extent."""
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


def _perturbed_recist(recist: List[float], long_px: float, W: int, H: int,
                      rng: np.random.Generator) -> List[float]:
    """A sloppy RECIST mark for a Possibly_noisy row: endpoints off by ~15% of the long axis."""
    pts = np.array(recist, dtype=np.float64).reshape(4, 2)
    pts += rng.normal(0.0, 0.15 * max(long_px, 4.0), size=pts.shape)
    pts[:, 0] = np.clip(pts[:, 0], 0, W - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, H - 1)
    return [round3(v) for v in pts.ravel()]


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
                [int(seed), 3, draw_index(layout.patient), layout.study, layout.series,
                 les_t['series_index']]))
            recist = _perturbed_recist(recist, long_px, width, height, noise_rng)
            long_px = math.hypot(recist[2] - recist[0], recist[3] - recist[1])
            short_px = math.hypot(recist[6] - recist[4], recist[7] - recist[5])
            box = [round3(v) for v in recist_box(recist, RECIST_PAD_PX, (width, height))]
            les_t['csv_recist'] = recist
            les_t['csv_box'] = box
        key = les_t['key_slice']
        cxn = 0.5 * (recist[0] + recist[2]) / width
        cyn = 0.5 * (recist[1] + recist[3]) / height
        zn = body_level(key)
        lo, hi = window_for(les_t['organ'])
        rows.append([
            f'{name}_{key:03d}.png', layout.patient, layout.study, layout.series,
            key, ', '.join(format_coord(v + 1.0) for v in recist),
            ', '.join(format_coord(v + 1.0) for v in box),
            f'{format_number(long_px)}, {format_number(short_px)}',
            ', '.join(format_number(round(v, 6)) for v in (cxn, cyn, zn)),
            -1 if split == 'train' else les_t['lesion_type'], int(les_t['noisy']),
            f'{slice_range[0]}, {slice_range[1]}',
            f'{format_number(sp)}, {format_number(sp)}, {format_number(dz)}',
            f'{width}, {height}', f'{lo}, {hi}', layout.gender or '',
            '' if layout.age is None else layout.age, SPLIT_CODE[split]])
        les_t['csv_row'] = len(rows)


# The task of the forked workers of map_series, ``(build, args)``.  Set only inside a worker
# process, by _init_worker (the pool initializer, run once in each worker right after the fork;
# with the fork start method its arguments are inherited, not pickled, so the real CTs in
# ``args`` never go through a pipe).  The parent process never sets it; nothing but _init_worker
# and _run_task may touch it.
_WORKER_TASK: Optional[tuple] = None


def _init_worker(build: Callable, args: tuple) -> None:
    global _WORKER_TASK
    _WORKER_TASK = (build, args)


def _run_task(layout):
    build, args = _WORKER_TASK
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
    workers = min(int(workers), len(layouts))
    if workers <= 1 or 'fork' not in multiprocessing.get_all_start_methods():
        for layout in layouts:
            yield build(layout, *args)
        return
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(workers, initializer=_init_worker, initargs=(build, args)) as pool:
        yield from pool.imap(_run_task, layouts, chunksize=1)


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
