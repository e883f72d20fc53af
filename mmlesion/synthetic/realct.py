"""Real chest CT volumes (NRRD + lesion masks) in DeepLesion's on-disk format, with full truth.

The two real CTs available here (``real_ct/lung1_*``, ``real_ct/lung2_*``: the pyradiomics 3.0.1
test data, BSD-3-Clause) are gzip NRRD files, int16 HU, one binary lesion mask each.  This
module reads them, measures their lesions the way DeepLesion describes a lesion, and writes them
as a small DeepLesion dataset (:func:`write_realct_fixture`, CLI ``tools/make_realct_fixture.py``).

Frames and conventions:

- **Arrays.** pynrrd returns ``(x, y, z)`` arrays; :func:`read_nrrd_volume` transposes them to
  ``(z, y, x)`` = (slice, row, column), the image convention of every other array in mmlesion.
  With the ``left-posterior-superior`` space of these files, rows run anterior -> posterior and
  columns patient right -> left (the radiological display), and z runs inferior -> superior.
  An axis whose NRRD direction is negative is flipped so that this holds for any diagonal file.
- **Slice indices.** NRRD z index ``k`` (0-based) is DeepLesion slice index ``k + 1``
  (1-based like DeepLesion's file names): ``Images_png/<series>/001.png`` is ``z = 0``.
- **Pixels.** 0-based pixel centres at integers (x = column, y = row) in memory; DL_info.csv and
  the Lesion Harvester pickles hold them + 1 (DeepLesion's 1-based frame).
- **HU.** PNG raw = HU + 32768, with no clipping: every int16 value is stored exactly, so
  ``png - 32768`` equals the NRRD voxels bit for bit.

A lesion is one 3D connected component (26-connectivity) of a mask value.  Its *key slice* is
its largest cross-section (most pixels; ties go to the slice nearest the lesion's mean z, then
the lower one), its RECIST axes are measured there with :func:`~mmlesion.datasets.recist.
recist_from_mask` (long axis = longest diameter in mm, short axis = longest perpendicular), and
its DeepLesion box is that RECIST extent padded by 5 px.
"""
import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.utils.fileio import atomic_dump_json, atomic_dump_pickle, atomic_write_bytes
from mmlesion.datasets.recist import recist_box, recist_from_mask
from mmlesion.datasets.volume_reader import encode_uint16_png
from mmlesion.structures.volume_key import series_name, slice_file_name, volume_key

REAL_CT_NAMES = ('lung1', 'lung2')
# DeepLesion-style ids of the fixture: patient, study, series.  Patient indices above DeepLesion's
# 4,427 so they can never be mistaken for a real DeepLesion patient.
REAL_CT_IDS = {'lung1': (9001, 1, 1), 'lung2': (9002, 1, 1)}
# Fixture split (DL_info Train_Val_Test): the same patient-level choice as the real-anatomy
# generator, lung2 trains and lung1 is held out.
REAL_CT_SPLITS = {'lung1': 'test', 'lung2': 'train'}
SPLIT_CODE = {'train': 1, 'val': 2, 'test': 3}
HU_OFFSET = 32768
RECIST_PAD_PX = 5.0
SLICE_BASE = 1  # DeepLesion slice index of NRRD z = 0
LUNG_WINDOW = (-1350, 150)
SOFT_WINDOW = (-175, 275)
# Body level (0 = head, 1 = feet, per 1000 mm; DL_info's normalised z) of the top slice: both
# volumes end in the lower neck.
TOP_SLICE_LEVEL = 0.25
BODY_LEVEL_MM = 1000.0



@dataclass
class RealCTVolume:
    """A real CT volume in image convention.

    Attributes:
        name: e.g. ``'lung1'``.
        hu: ``(Z, H, W)`` int16 HU; rows = NRRD y, columns = NRRD x (see the module docstring).
        label: ``(Z, H, W)`` integer mask (0 = background) or None.
        spacing: ``(x, y, z)`` mm: column spacing, row spacing, slice interval.
        origin_mm: NRRD ``space origin`` (x, y, z) mm, of the unflipped file.
        space: NRRD ``space`` string.
        image_path, label_path: the files read.
    """
    name: str
    hu: np.ndarray
    label: Optional[np.ndarray]
    spacing: Tuple[float, float, float]
    origin_mm: Tuple[float, float, float]
    space: str
    image_path: str
    label_path: Optional[str]

    @property
    def num_slices(self) -> int:
        return int(self.hu.shape[0])

    @property
    def image_size(self) -> Tuple[int, int]:
        """(W, H) px."""
        return int(self.hu.shape[2]), int(self.hu.shape[1])


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_real_ct_dir(path: Optional[str] = None) -> str:
    """The folder holding ``lung1_image.nrrd`` etc.

    Order: ``path`` when given; ``$MMLESION_SHARED_DATA/real_ct``; ``../shared/data/real_ct``
    beside the repository root.

    Raises:
        FileNotFoundError: naming every place looked at.
    """
    if path is not None:
        if not os.path.isfile(os.path.join(path, 'lung1_image.nrrd')):
            raise FileNotFoundError(f'real CT folder {path!r} has no lung1_image.nrrd (expected '
                                    'lung1_image.nrrd, lung1_label.nrrd, lung2_image.nrrd, '
                                    'lung2_label.nrrd)')
        return os.fspath(path)
    tried = []
    env = os.environ.get('MMLESION_SHARED_DATA')
    if env:
        tried.append(os.path.join(env, 'real_ct'))
    tried.append(os.path.join(os.path.dirname(repo_root()), 'shared', 'data', 'real_ct'))
    for cand in tried:
        if os.path.isfile(os.path.join(cand, 'lung1_image.nrrd')):
            return cand
    raise FileNotFoundError(
        'real CT volumes (lung1_image.nrrd, ...) not found in ' + ', '.join(tried)
        + ': pass --real-ct-dir DIR or set MMLESION_SHARED_DATA to the folder holding real_ct/')


def _read_nrrd(path: str):
    try:
        import nrrd
    except ImportError as e:  # pragma: no cover - pynrrd is a declared dependency
        raise ImportError('reading NRRD volumes needs pynrrd (pip install pynrrd)') from e
    if not os.path.isfile(path):
        raise FileNotFoundError(f'NRRD file not found: {path}')
    try:
        return nrrd.read(path)
    except Exception as e:
        raise ValueError(f'{path}: not a readable NRRD file ({e})') from e


def _axes_and_spacing(header: dict, path: str, shape: Tuple[int, ...]):
    if len(shape) != 3 or int(header.get('dimension', len(shape))) != 3:
        raise ValueError(f'{path}: expected a 3D volume, got shape {shape}')
    dirs = header.get('space directions')
    if dirs is None:
        raise ValueError(f'{path}: no "space directions" field: the voxel spacing is unknown')
    dirs = np.asarray(dirs, dtype=np.float64)
    if dirs.shape != (3, 3) or not np.all(np.isfinite(dirs)):
        raise ValueError(f'{path}: "space directions" must be 3 finite 3-vectors, got {dirs}')
    off = dirs - np.diag(np.diag(dirs))
    if np.any(np.abs(off) > 1e-6 * np.abs(dirs).max()):
        raise ValueError(f'{path}: oblique "space directions" {dirs.tolist()} are not supported '
                         '(expected a diagonal matrix: axial slices on the x-y grid)')
    diag = np.diag(dirs)
    if np.any(diag == 0):
        raise ValueError(f'{path}: zero voxel spacing in "space directions" {diag.tolist()}')
    space = str(header.get('space', ''))
    if space and space not in ('left-posterior-superior', 'LPS'):
        raise ValueError(f'{path}: space {space!r} is not supported (expected '
                         'left-posterior-superior, the DICOM patient frame)')
    return np.abs(diag), diag < 0, space


def _to_image_convention(arr: np.ndarray, flips) -> np.ndarray:
    for axis, flip in enumerate(flips):
        if flip:
            arr = np.flip(arr, axis=axis)
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def read_nrrd_volume(image_path: str, label_path: Optional[str] = None,
                     name: Optional[str] = None) -> RealCTVolume:
    """Read a CT NRRD (and its lesion mask) into image convention ``(z, y, x)``.

    Args:
        image_path: integer HU volume (int16, or an integer type whose values fit int16).
        label_path: lesion mask of the same shape and spacing, or None.
        name: defaults to the file name without ``_image.nrrd``.

    Raises:
        ValueError: not 3D, oblique or zero spacing, unsupported space, non-integer or
            out-of-int16 voxels, or a mask whose shape or spacing differs from the image's.
    """
    data, header = _read_nrrd(image_path)
    spacing, flips, space = _axes_and_spacing(header, image_path, data.shape)
    if not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f'{image_path}: expected integer HU voxels, got dtype {data.dtype}')
    if data.dtype != np.int16:
        lo, hi = int(data.min()), int(data.max())
        if lo < -32768 or hi > 32767:
            raise ValueError(f'{image_path}: HU range {lo}..{hi} does not fit int16 '
                             '(DeepLesion PNGs store HU + 32768 in 16 bits)')
        data = data.astype(np.int16)
    hu = _to_image_convention(data, flips)
    label = None
    if label_path is not None:
        ldata, lheader = _read_nrrd(label_path)
        lspacing, lflips, _ = _axes_and_spacing(lheader, label_path, ldata.shape)
        if ldata.shape != data.shape:
            raise ValueError(f'{label_path}: mask shape {ldata.shape} differs from the image '
                             f'{image_path} shape {data.shape}')
        if not np.allclose(lspacing, spacing, rtol=1e-5) or list(lflips) != list(flips):
            raise ValueError(f'{label_path}: mask spacing {lspacing.tolist()} differs from the '
                             f'image spacing {spacing.tolist()}')
        if not np.issubdtype(ldata.dtype, np.integer) or ldata.min() < 0:
            raise ValueError(f'{label_path}: expected a non-negative integer mask, got dtype '
                             f'{ldata.dtype}, min {ldata.min()}')
        label = _to_image_convention(ldata, lflips)
    if name is None:
        base = os.path.basename(image_path)
        name = base[:-len('_image.nrrd')] if base.endswith('_image.nrrd') else base.split('.')[0]
    origin = header.get('space origin')
    origin = tuple(float(v) for v in origin) if origin is not None else (0.0, 0.0, 0.0)
    return RealCTVolume(name=name, hu=hu, label=label,
                        spacing=tuple(float(s) for s in spacing), origin_mm=origin,
                        space=space, image_path=os.fspath(image_path),
                        label_path=None if label_path is None else os.fspath(label_path))


def load_real_ct(real_ct_dir: Optional[str] = None,
                 names: Sequence[str] = REAL_CT_NAMES) -> List[RealCTVolume]:
    """``<name>_image.nrrd`` + ``<name>_label.nrrd`` of each name, from :func:`find_real_ct_dir`."""
    folder = find_real_ct_dir(real_ct_dir)
    return [read_nrrd_volume(os.path.join(folder, f'{n}_image.nrrd'),
                             os.path.join(folder, f'{n}_label.nrrd'), name=n) for n in names]


def nrrd_z_to_slice(z: int) -> int:
    """DeepLesion slice index (1-based) of NRRD z index ``z`` (0-based)."""
    return int(z) + SLICE_BASE


def slice_to_nrrd_z(slice_index: int) -> int:
    return int(slice_index) - SLICE_BASE


def hu_slice_to_png_bytes(hu2d: np.ndarray) -> bytes:
    """Lossless 16-bit PNG of an integer HU slice: raw = HU + 32768 (no clipping)."""
    arr = np.asarray(hu2d)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'expected a 2D integer HU slice, got {arr.dtype} {arr.shape}')
    if arr.min() < -32768 or arr.max() > 32767:
        raise ValueError('HU outside the int16 range cannot be stored as DeepLesion PNG')
    raw = (arr.astype(np.int32) + HU_OFFSET).astype(np.uint16)
    return encode_uint16_png(raw)


# ---------------------------------------------------------------------------------- lesion masks
def mask_lesions(label: np.ndarray) -> List[np.ndarray]:
    """Split a label volume into lesions: 3D connected components (26-connectivity) per value.

    Returns:
        ``(Z, H, W)`` bool masks, ordered by label value, then by first voxel in (z, y, x) order.
    """
    from scipy import ndimage
    lesions = []
    for value in np.unique(label):
        if value == 0:
            continue
        comp, n = ndimage.label(label == value, structure=np.ones((3, 3, 3), dtype=bool))
        for i in range(1, n + 1):
            lesions.append(comp == i)
    return lesions


def mask_slice_boxes(mask3d: np.ndarray) -> Dict[int, List[float]]:
    """Per-slice extent of a 3D mask: ``{z: [x1, y1, x2, y2]}``.

    z is the array's slice index; x, y are the extreme mask pixel *centres* (0-based, inclusive:
    a one-pixel cross-section has x1 = x2).  For continuous corners add 1 to x2 and y2.
    """
    out = {}
    for z in np.flatnonzero(mask3d.reshape(mask3d.shape[0], -1).any(axis=1)):
        ys, xs = np.nonzero(mask3d[z])
        out[int(z)] = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    return out


def mask_box3d(mask3d: np.ndarray) -> List[float]:
    """``[x1, y1, x2, y2, z1, z2]``: extreme pixel centres and first/last slice (0-based)."""
    zs, ys, xs = np.nonzero(mask3d)
    if len(zs) == 0:
        raise ValueError('mask_box3d: the mask is empty')
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()),
            float(zs.min()), float(zs.max())]


def key_slice_of_mask(mask3d: np.ndarray) -> int:
    """Index of the largest cross-section (ties: nearest the mean z of the voxels, then lower)."""
    areas = mask3d.reshape(mask3d.shape[0], -1).sum(axis=1)
    if areas.max() == 0:
        raise ValueError('key_slice_of_mask: the mask is empty')
    zs = np.arange(len(areas))
    z_mean = float((areas * zs).sum() / areas.sum())
    best = np.flatnonzero(areas == areas.max())
    return int(min(best, key=lambda z: (abs(z - z_mean), z)))


def _r3(v: float) -> float:
    r = round(float(v), 3)
    return 0.0 if r == 0 else r


def describe_mask_lesion(mask3d: np.ndarray, spacing_xy: Sequence[float],
                         slice_of: Callable[[int], int] = nrrd_z_to_slice,
                         pad_px: float = RECIST_PAD_PX) -> dict:
    """A lesion described the DeepLesion way from its 3D mask, on every slice it appears.

    Args:
        mask3d: ``(Z, H, W)`` bool mask of one lesion.
        spacing_xy: (x, y) mm/px.
        slice_of: maps an array slice index to the absolute slice index written out.

    Returns:
        dict (the ``truth.json`` lesion fields shared with the synthetic generator): ``key_slice``
        (absolute), ``recist`` (8 numbers, 0-based, 3 decimals), ``diameters_px`` / ``_mm``,
        ``box2d`` (RECIST extent + ``pad_px``, clipped to the image, 0-based), ``slices`` (one per
        slice with ``slice``, ``box`` (RECIST box of that cross-section), ``mask_box`` (extreme
        pixel centres), ``area_px``, ``recist``, ``diameters_px``), ``box3d`` (union of the
        per-slice boxes + first/last slice), ``mask_box3d``, ``num_voxels`` and ``center_px``
        (centroid of the key cross-section).
    """
    mask3d = np.asarray(mask3d, dtype=bool)
    if mask3d.ndim != 3 or not mask3d.any():
        raise ValueError(f'describe_mask_lesion: expected a non-empty (Z, H, W) mask, got shape '
                         f'{mask3d.shape}')
    sx, sy = (float(s) for s in spacing_xy)
    H, W = mask3d.shape[1:]
    slices = []
    for z, mbox in mask_slice_boxes(mask3d).items():
        m = mask3d[z]
        r = recist_from_mask(m, (sx, sy))
        recist = [_r3(v) for v in r['long_axis'] + r['short_axis']]
        box = [_r3(v) for v in recist_box(recist, pad_px, (W, H))]
        slices.append(dict(slice=slice_of(z), box=box, mask_box=mbox, area_px=int(m.sum()),
                           recist=recist,
                           diameters_px=[round(r['long_px'], 4), round(r['short_px'], 4)]))
    kz = key_slice_of_mask(mask3d)
    key = slice_of(kz)
    ks = next(s for s in slices if s['slice'] == key)
    ys, xs = np.nonzero(mask3d[kz])
    r_key = recist_from_mask(mask3d[kz], (sx, sy))
    boxes = np.array([s['box'] for s in slices])
    mboxes = np.array([s['mask_box'] for s in slices])
    first, last = slices[0]['slice'], slices[-1]['slice']
    return dict(
        key_slice=key, recist=ks['recist'], diameters_px=ks['diameters_px'],
        diameters_mm=[round(r_key['long_mm'], 4), round(r_key['short_mm'], 4)],
        box2d=ks['box'], center_px=[_r3(xs.mean()), _r3(ys.mean())],
        slices=slices,
        box3d=[float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
               float(boxes[:, 3].max()), first, last],
        mask_box3d=[float(mboxes[:, 0].min()), float(mboxes[:, 1].min()),
                    float(mboxes[:, 2].max()), float(mboxes[:, 3].max()), first, last],
        num_voxels=int(mask3d.sum()))


def lung_air_fraction(hu2d: np.ndarray, mask2d: np.ndarray, ring_px: int = 3) -> float:
    """Fraction of the ``ring_px`` ring around a cross-section that is lung-like (< -500 HU)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_px + 1, 2 * ring_px + 1))
    ring = cv2.dilate(mask2d.astype(np.uint8), kernel).astype(bool) & ~mask2d
    if not ring.any():
        return 0.0
    return float((hu2d[ring] < -500).mean())


def lesion_type_of(hu2d: np.ndarray, mask2d: np.ndarray) -> Tuple[str, int]:
    """(organ, DeepLesion coarse type) of a real lesion from its key-slice surroundings.

    A lesion whose rim is at least 25% lung-like air is a lung lesion (type 5); otherwise it is
    reported as soft tissue (type 7): the masks of these files carry no organ label.
    """
    if lung_air_fraction(hu2d, mask2d) >= 0.25:
        return 'lung', 5
    return 'soft_tissue', 7


def body_level(z: int, num_slices: int, slice_interval_mm: float) -> float:
    """DL_info's normalised z of NRRD slice ``z`` (approximate: the top slice at 0.25)."""
    return TOP_SLICE_LEVEL + (num_slices - 1 - z) * slice_interval_mm / BODY_LEVEL_MM


def estimate_noise_hu(hu2d: np.ndarray, region: Optional[np.ndarray] = None) -> float:
    """White-noise-equivalent std (HU) of an image's high-pass residual in soft tissue.

    Residual = image - its 3x3 mean; its robust std (1.4826 MAD) over ``region`` (default: pixels
    in [-150, 150] HU) divided by sqrt(8/9), the factor of white noise.  Edges barely move the
    median, so this tracks the noise, not the anatomy.
    """
    img = np.asarray(hu2d, dtype=np.float32)
    res = img - cv2.blur(img, (3, 3), borderType=cv2.BORDER_REFLECT)
    if region is None:
        region = (img > -150) & (img < 150)
    vals = res[region]
    if vals.size < 50:
        vals = res.ravel()
    mad = float(np.median(np.abs(vals - np.median(vals))))
    return 1.4826 * mad / math.sqrt(8.0 / 9.0)


# ------------------------------------------------------------------------------------- fixture
def _g(v: float) -> str:
    s = '%g' % float(v)
    return '0' if s == '-0' else s


def write_realct_fixture(out_dir: str, real_ct_dir: Optional[str] = None,
                         half_range_mm: Optional[float] = None, overwrite: bool = False,
                         verbose: bool = False) -> dict:
    """Write the real CT volumes as a DeepLesion dataset with their complete ground truth.

    Output (``out_dir``):

    - ``Images_png/0090NN_01_01/KKK.png``: 16-bit, raw = HU + 32768 exactly; ``KKK`` = NRRD z + 1.
    - ``DL_info.csv``: one row per real lesion (key slice = largest cross-section, RECIST,
      ``Bounding_boxes`` = RECIST extent + 5 px, 1-based; the real spacing; ``Slice_range`` = the
      released slices; lung window; gender and age empty (unknown)).  lung2 is ``train``,
      lung1 ``test`` (``REAL_CT_SPLITS``).
    - ``ground_truth/``: the generator's Lesion Harvester files (``Revised-Train-VM.pkl`` for the
      training volume, ``Revised-Test.pkl``, ``RECIST-Box-Test.pkl``, ``3D-Box.pkl`` for the test
      volume), plus ``Mask-Box-2D.pkl`` (every volume: ``{key: {z_rel: [[x1, y1, x2, y2, z_rel,
      z_rel], ...]}}``, the mask's extreme pixel centres on *every* slice it appears, 1-based
      x/y) and ``Mask-Box-3D.pkl`` (``{key: [[x1, y1, x2, y2, z1_rel, z2_rel], ...]}``, the
      mask's 3D extent), ``truth.json`` (the generator's schema, 0-based, absolute slices);
      ``summary.json``.

    Args:
        half_range_mm: None releases each whole volume (slices 1..Z).  A value releases
            ``key +- half_range_mm`` like DeepLesion (+-30 mm), clipped to the volume; lesions
            are then described on the released slices only.
    """
    # the generator's writers: one DL_info / pickle format in the package
    from .generator import (_f3, _write_dl_info, _write_ground_truth,
                                      prepare_output_dir)
    t0 = time.time()
    out_dir = prepare_output_dir(out_dir, overwrite)
    gt_dir = os.path.join(out_dir, 'ground_truth')
    rows, volumes = [], []
    mask2d_pkl, mask3d_pkl = {}, {}
    lesion_id = 0
    n_slices = 0
    for vol in load_real_ct(real_ct_dir):
        if vol.label is None or not vol.label.any():
            raise ValueError(f'{vol.label_path}: the lesion mask is empty')
        patient, study, series = REAL_CT_IDS.get(vol.name, (9000 + len(volumes) + 1, 1, 1))
        split = REAL_CT_SPLITS.get(vol.name, 'train')
        name = series_name(patient, study, series)
        sx, sy, dz = (float(_g(v)) for v in vol.spacing)
        Z = vol.num_slices
        W, H = vol.image_size
        lesions = mask_lesions(vol.label)
        z0, z1 = 0, Z - 1
        if half_range_mm is not None:
            h = int(round(float(half_range_mm) / dz))
            keys = [key_slice_of_mask(m) for m in lesions]
            z0, z1 = max(0, min(keys) - h), min(Z - 1, max(keys) + h)
        start, end = nrrd_z_to_slice(z0), nrrd_z_to_slice(z1)
        key = volume_key(patient, study, series, start, end)
        for z in range(z0, z1 + 1):
            atomic_write_bytes(os.path.join(out_dir, 'Images_png', slice_file_name(name, z + 1)),
                               hu_slice_to_png_bytes(vol.hu[z]))
            n_slices += 1
        vol_lesions = []
        for i, m in enumerate(lesions):
            sub = m[z0:z1 + 1]
            if not sub.any():
                continue
            d = describe_mask_lesion(sub, (sx, sy), slice_of=lambda z: nrrd_z_to_slice(z + z0))
            kz = slice_to_nrrd_z(d['key_slice'])
            organ, ltype = lesion_type_of(vol.hu[kz], m[kz])
            window = LUNG_WINDOW if organ == 'lung' else SOFT_WINDOW
            recist, box = d['recist'], d['box2d']
            zn = body_level(kz, Z, dz)
            cxn = 0.5 * (recist[0] + recist[2]) / W
            cyn = 0.5 * (recist[1] + recist[3]) / H
            rows.append([
                f'{name}_{d["key_slice"]:03d}.png', patient, study, series, d['key_slice'],
                ', '.join(_f3(v + 1.0) for v in recist), ', '.join(_f3(v + 1.0) for v in box),
                f'{_g(d["diameters_px"][0])}, {_g(d["diameters_px"][1])}',
                ', '.join(_g(round(v, 6)) for v in (cxn, cyn, zn)),
                -1 if split == 'train' else ltype, 0, f'{start}, {end}',
                f'{_g(sx)}, {_g(sy)}, {_g(dz)}', f'{W}, {H}', f'{window[0]}, {window[1]}',
                '', '', SPLIT_CODE[split]])
            vol_lesions.append(dict(
                id=lesion_id, series_index=i, origin='real', organ=organ, lesion_type=ltype,
                kind='real', marked=True, noisy=False, csv_row=len(rows),
                key_slice_relative=d['key_slice'] - start,
                volume_mm3=round(d['num_voxels'] * sx * sy * dz, 3),
                source_volume=vol.name, source_label_value=int(vol.label[m][0]), **d))
            lesion_id += 1
        role = 'V_M' if split == 'train' else split
        volumes.append(dict(
            key=key, series=name, patient_index=patient, study_index=study, series_id=series,
            subvolume_index=0, slice_range=[start, end], num_slices=end - start + 1,
            spacing=[sx, sy, dz], slice_interval=dz, image_size=[W, H], split=split, role=role,
            complete=True, region='chest_abdomen' if vol.name == 'lung2' else 'chest',
            noise_hu=_r3(estimate_noise_hu(vol.hu[(z0 + z1) // 2])),
            soft_window=list(SOFT_WINDOW), gender=None, age=None,
            marked_key_slices=sorted(les['key_slice'] for les in vol_lesions),
            lesions=vol_lesions, lookalikes=[], anatomy='real', source_volume=vol.name,
            source_files=[os.path.basename(vol.image_path), os.path.basename(vol.label_path)],
            source_z_range=[z0, z1]))
        per_z: Dict[int, list] = {}
        for les in vol_lesions:
            for s in les['slices']:
                zr = s['slice'] - start
                per_z.setdefault(zr, []).append(
                    [np.float64(v + 1.0) for v in s['mask_box']] + [np.float64(zr)] * 2)
        mask2d_pkl[key] = dict(sorted(per_z.items()))
        mask3d_pkl[key] = [[np.float64(v + 1.0) for v in les['mask_box3d'][:4]]
                           + [np.float64(les['mask_box3d'][4] - start),
                              np.float64(les['mask_box3d'][5] - start)] for les in vol_lesions]
        if verbose:
            print(f'[make_realct_fixture] {vol.name} -> {key}: {end - start + 1} slices, '
                  f'{len(vol_lesions)} lesion(s)', flush=True)
    _write_dl_info(os.path.join(out_dir, 'DL_info.csv'), rows)
    counts = _write_ground_truth(gt_dir, volumes)
    atomic_dump_pickle(mask2d_pkl, os.path.join(gt_dir, 'Mask-Box-2D.pkl'))
    atomic_dump_pickle(mask3d_pkl, os.path.join(gt_dir, 'Mask-Box-3D.pkl'))
    counts['Mask-Box-2D.pkl'] = sum(len(b) for v in mask2d_pkl.values() for b in v.values())
    counts['Mask-Box-3D.pkl'] = sum(len(v) for v in mask3d_pkl.values())
    info = dict(
        generator='mmlesion.datasets.realct', format_version=1,
        source='pyradiomics 3.0.1 test data (lung1, lung2), BSD-3-Clause',
        frames={
            'x_y': '0-based pixels, pixel centres at integers; DL_info.csv and the pickles '
                   'hold these values + 1',
            'slice': 'absolute DeepLesion slice index = NRRD z index + 1; the pickles hold z '
                     'relative to the sub-volume start',
            'array': 'NRRD (x, y, z) transposed to (z, rows = y, columns = x)',
            'hu': 'PNG raw - 32768 equals the NRRD voxel exactly',
            'key_slice': 'largest cross-section of the mask (ties: nearest its mean z)',
            'mask_box': 'extreme mask pixel centres of a cross-section, x1, y1, x2, y2',
            'box': 'RECIST extent padded by 5 px, clipped to [0, W-1] x [0, H-1]',
        })
    atomic_dump_json(dict(info=info, volumes=volumes), os.path.join(gt_dir, 'truth.json'))
    summary = dict(volumes=len(volumes), lesions=lesion_id, dl_info_rows=len(rows),
                   slices_written=n_slices, ground_truth_boxes=counts,
                   volume_keys=[v['key'] for v in volumes],
                   generation_time_s=round(time.time() - t0, 3))
    atomic_dump_json(summary, os.path.join(out_dir, 'summary.json'), indent=2)
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Write the real CT volumes (pyradiomics lung1/lung2 NRRD + masks) in the '
        'NIH DeepLesion format: 16-bit PNG slices (HU + 32768, slice index = NRRD z + 1), '
        'DL_info.csv and the complete mask ground truth (Lesion Harvester pickles, truth.json).')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--real-ct-dir', default=None,
                   help='folder with lung{1,2}_{image,label}.nrrd (default: '
                   '$MMLESION_SHARED_DATA/real_ct or ../shared/data/real_ct)')
    p.add_argument('--half-range-mm', type=float, default=None,
                   help='release key slice +- this many mm like DeepLesion (default: the whole '
                   'volume)')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--quiet', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = write_realct_fixture(args.out, args.real_ct_dir, args.half_range_mm,
                                       overwrite=args.overwrite, verbose=not args.quiet)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"[make_realct_fixture] wrote {summary['volumes']} volumes "
              f"({summary['slices_written']} slices, {summary['lesions']} lesions) to {args.out} "
              f"in {summary['generation_time_s']:.1f} s", file=sys.stderr)
    return 0
