"""Writing a dataset in DeepLesion's on-disk format: the one writer of the package.

The synthetic generator (phantom and real anatomy, :mod:`.generator`) and the real-CT fixture
(:mod:`.realct`) write through these functions, so both produce exactly the files of the NIH
release:

- :func:`prepare_output_dir`: ``DIR/Images_png`` and ``DIR/ground_truth`` (the PNG slices are
  written by the callers, encoded by :mod:`mmlesion.datasets.png_codec`).
- :func:`write_dl_info`: ``DIR/DL_info.csv`` with DeepLesion's header and quoting; the rows hold
  1-based pixel coordinates (0-based values + 1) formatted with :func:`format_number` and
  :func:`format_coord`, as the real file does.
- :func:`write_ground_truth`: the Lesion Harvester pickles (``Revised-*``, ``RECIST-Box-*``,
  ``3D-Box.pkl``) from ``truth.json`` volumes: x, y 1-based, z relative to the sub-volume's first
  slice (:func:`lh_box`).

Every file is written atomically (:mod:`mmlesion.utils.fileio`).
"""
import csv
import io
import os
import shutil
from typing import Dict, List, Sequence

import numpy as np

from mmlesion.datasets.converters.dl_info import DL_INFO_HEADER  # the real header, defined once
from mmlesion.utils.fileio import atomic_dump_pickle, atomic_open

SPLIT_CODE = {'train': 1, 'val': 2, 'test': 3}  # DL_info Train_Val_Test
RECIST_PAD_PX = 5.0  # DeepLesion's Bounding_boxes: the RECIST extent padded by 5 px
# DL_info DICOM_windows (HU) the writers record per lesion organ.
LUNG_WINDOW = (-1350, 150)
BONE_WINDOW = (-450, 1050)
SOFT_WINDOWS = ((-175, 275), (-160, 240))
SOFT_WINDOW = SOFT_WINDOWS[0]
# Lesion Harvester ground-truth file of each sub-volume role (Revised-* pickles).
GT_FILES = {
    'V_M': 'Revised-Train-VM.pkl',
    'V_H_test': 'Revised-Train-VHtest.pkl',
    'val': 'Revised-Valid.pkl',
    'test': 'Revised-Test.pkl',
}


def format_number(v: float) -> str:
    """DeepLesion's number style: 6 significant digits, no trailing zeros (``%g``)."""
    s = '%g' % float(v)
    return '0' if s == '-0' else s


def round3(v: float) -> float:
    """``v`` rounded to 3 decimals (the precision of DL_info.csv and the pickles), never -0.0."""
    r = round(float(v), 3)
    return 0.0 if r == 0 else r


def format_coord(v: float) -> str:
    """A coordinate with at most 3 decimals, like DL_info.csv (e.g. 154.273, 128)."""
    s = f'{round3(v):.3f}'.rstrip('0').rstrip('.')
    return '0' if s in ('', '-0') else s


def lh_box(box0: Sequence[float], z_rel: float) -> list:
    """A Lesion Harvester box: 1-based x/y, relative z, numpy float64 values like the releases."""
    return [np.float64(round3(v + 1.0)) for v in box0] + [np.float64(z_rel), np.float64(z_rel)]


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


def write_dl_info(path: str, rows: List[list]) -> None:
    """Write ``DL_info.csv``: DeepLesion's header, then ``rows`` (one list of the 18 fields per
    RECIST-marked lesion, already formatted; 1-based pixels), ``\\n`` line ends, csv quoting."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(DL_INFO_HEADER)
    writer.writerows(rows)
    with atomic_open(path, 'w') as f:
        f.write(buf.getvalue())


def write_ground_truth(gt_dir: str, volumes: List[dict]) -> Dict[str, int]:
    """Write the Lesion Harvester pickles of ``volumes`` (``truth.json`` volumes) to ``gt_dir``.

    ``Revised-*`` (per role, :data:`GT_FILES`, keys ending in ``.annot``): every lesion's key-slice
    box; ``RECIST-Box-Valid/Test.pkl``: the marked, not noisy lesions of val / test;
    ``3D-Box.pkl``: every lesion's 3D box of the test sub-volumes.  x, y 1-based (+ 1), z
    relative to the sub-volume's first slice.

    Returns:
        ``{file name: number of boxes}``.
    """
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
                per_z.setdefault(int(z), []).append(lh_box(les['box2d'], z))
            revised[name][vol['key'] + '.annot'] = dict(sorted(per_z.items()))
        if vol['split'] in ('val', 'test'):
            name = 'RECIST-Box-Valid.pkl' if vol['split'] == 'val' else 'RECIST-Box-Test.pkl'
            per_z = {}
            for les in vol['lesions']:
                if les['marked'] and not les['noisy']:
                    z = les['key_slice'] - start
                    per_z.setdefault(int(z), []).append(lh_box(les['box2d'], z))
            if per_z:
                recist[name][vol['key']] = dict(sorted(per_z.items()))
        if vol['split'] == 'test':
            box3d[vol['key']] = [
                [np.float64(round3(v + 1.0)) for v in les['box3d'][:4]]
                + [np.float64(les['box3d'][4] - start), np.float64(les['box3d'][5] - start)]
                for les in vol['lesions']]
    counts = {}
    for name, data in list(revised.items()) + list(recist.items()):
        atomic_dump_pickle(data, os.path.join(gt_dir, name))
        counts[name] = sum(len(b) for v in data.values() for b in v.values())
    atomic_dump_pickle(box3d, os.path.join(gt_dir, '3D-Box.pkl'))
    counts['3D-Box.pkl'] = sum(len(v) for v in box3d.values())
    return counts
