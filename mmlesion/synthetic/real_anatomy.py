"""Real-anatomy mode of the generator: synthetic lesions and look-alikes inserted into real CT.

The two real chest CTs (``real_ct/lung1``, ``lung2``; see :mod:`.nrrd_volume`) are
the backgrounds.  Each generated series is one augmented window of one of them:

- **Window**: 11-17 consecutive real 5 mm slices (at most ``max_slices``), about half of them
  chosen to contain the real lesion's largest cross-section.  Slice indices stay the real ones
  (absolute slice = NRRD z + 1), so every output slice traces back to its source slice.
- **In-plane**: an optional left-right flip, then a square crop inside the scan (78-100% of its
  width, centred on the body with a shift of up to 5%; it may cut the body's sides),
  resampled to ``image_size`` px by pixel-area averaging.  The pixel spacing becomes
  ``source spacing * crop / image_size``: physical sizes are unchanged.
- **Intensity**: HU * U(0.97, 1.03) + U(-15, 15), and after insertion white noise of
  U(0, 6) HU std.

Into the window go, with the phantom generator's size, shape and contrast models
(:mod:`.lesions`):

- **Look-alikes**: vessel-like tubes running through many slices: 3-6 in the lungs (0-60 HU:
  a nodule on one slice, a vessel in 3D) and 1-3 hypodense ones in the liver (15-35 HU below
  it), clipped to their host tissue and kept off the real lesions.
- **Lesions**: lung nodules (solid or ground glass) in the lungs, lymph-node-like lesions in the
  mediastinal fat, hypo/hyperdense lesions in the liver and other abdominal parenchyma (lung2's
  lower slices), soft-tissue lesions in the body wall.  Each lies wholly inside its host tissue
  on every slice it reaches (with a 1 px + edge margin), clear of look-alikes, of other lesions
  and of the real lesions' masks dilated by ``REAL_EXCLUSION_MM`` (7 mm) in-plane and one slice
  in z.  Lung nodules also need >= 60% aerated lung under them (not on the hilum), nodes >= 25%
  fat, parenchymal lesions >= 90% parenchyma.  Their interior noise matches the image's (the
  white-noise-equivalent std of the real slice), so a pasted lesion is not given away by being
  smooth.

Host tissues come from a threshold-and-morphology segmentation of each real volume at half
resolution (:func:`segment_tissues`): body, lungs (air components whose median is above -960 HU,
in >= 100 cm^3 3D components, holes filled), mediastinum (convex hull of the lungs minus the
lungs and bone), liver / other abdominal parenchyma (20-100 HU deep in the body below the lungs'
largest extent; the liver is the largest such component on the patient's right), body wall
(3-30 mm under the skin), bone (> 180 HU).

Marking: DeepLesion's ~45% rule of the phantom mode (1-3 marked lesions per sub-volume, a
Poisson number unmarked); a real lesion whose largest cross-section is in the window takes one of
the marked slots with probability ``REAL_MARK_P`` (0.9), any other visible real lesion one of the
unmarked slots; its RECIST is measured on its resampled mask.  The complete truth holds every
synthetic lesion, every visible real lesion and every look-alike.

Patient-level split: with two patients only, one real volume (``held_out``, default lung1) gives
every test sub-volume and nothing else; the other gives train (V_M, V_H, V_H^test) and val.  So
the test anatomy is never seen in training *nor in model selection*; val shares the training
patient with new windows, crops and lesions.  Test numbers thus measure generalisation to an
unseen patient, val numbers are optimistic.
"""
import functools
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from scipy import ndimage

from mmlesion.datasets.png_codec import hu_to_png_clipped
from mmlesion.structures.volume_key import series_name, slice_file_name, volume_key
from mmlesion.utils.fileio import atomic_write_bytes
from mmlesion.utils.locations import find_real_ct_dir

from .layout import SeriesLayout
from .lesion_masks import (
    describe_mask_lesion,
    estimate_noise_hu,
    key_slice_of_mask,
    lesion_type_of,
    mask_lesions,
)
from .lesions import (
    MAX_C_MM,
    MAX_DIAMETER_MM,
    MIN_DIAMETER_MM,
    Lesion,
    LookAlike,
    lesion_hu,
    sample_diameter_mm,
    sample_lesion_shape,
    sample_tube,
)
from .nrrd_volume import (
    REAL_CT_IDS,
    REAL_CT_NAMES,
    RealCTVolume,
    body_level,
    load_real_ct,
    nrrd_z_to_slice,
)
from .phantom import LesionHost, TubeHost
from .series import (
    MARKED_PER_VOLUME,
    MIN_IMAGE_SIZE,
    UNMARKED_MEAN,
    SeriesGeometry,
    SubVolume,
    assemble_series,
    gauss_kernel_sq_sum,
    lesion_truth,
    lookalike_truth,
    map_series,
)
from .shapes import Ellipsoid, Grid, pv_weight, section_window, soft_ellipse
from .writer import LUNG_WINDOW, SOFT_WINDOW, format_number, round3

# Tissue codes of segment_tissues().
OUTSIDE, BODY, LUNG, MEDIASTINUM, LIVER, ABDOMEN, WALL, BONE = range(8)
TISSUES = ('outside', 'body', 'lung', 'mediastinum', 'liver', 'abdomen', 'wall', 'bone')
SEG_SCALE = 2  # tissue maps are computed at 1/2 resolution (4x faster; ~1.2 mm px)
REAL_EXCLUSION_MM = 7.0
REAL_MARK_P = 0.9
REAL_WINDOW_P = 0.5  # fraction of windows centred on a real lesion
WINDOW_SLICES = (11, 17)
HU_SCALE = (0.97, 1.03)
INTENSITY_JITTER_HU = (-15.0, 15.0)  # HU added to a whole window (after HU_SCALE)
NOISE_ADD_HU = (0.0, 6.0)
CROP_FRACTION = (0.78, 1.0)
CROP_SHIFT = 0.05
FILL_HU = -1000.0
_LAYOUT_STREAM = 0x5245  # 'RE': the real layout's generator, apart from the series'
_SERIES_STREAM = 5

# Hosts of synthetic lesions in real anatomy (DeepLesion coarse types; weights renormalised over
# the hosts present at a lesion's height).
REAL_LESION_HOSTS: Tuple[LesionHost, ...] = (
    LesionHost('lung', 5, frozenset({'lung'}), 'lung', 0.45, 12.0),
    LesionHost('mediastinum', 3, frozenset({'mediastinum'}), 'fat_node', 0.20, 14.0),
    LesionHost('liver', 4, frozenset({'liver'}), 'parenchyma', 0.30, 18.0),
    LesionHost('abdomen', 2, frozenset({'abdomen'}), 'parenchyma', 0.10, 15.0),
    LesionHost('soft_tissue', 7, frozenset({'wall'}), 'soft', 0.12, 16.0),
)
REAL_TUBE_HOSTS: Tuple[TubeHost, ...] = (
    TubeHost('vessel', 'lung', frozenset({'lung'}), (3, 6), (1.2, 3.0)),
    TubeHost('vessel', 'liver', frozenset({'liver'}), (1, 3), (2.0, 4.0)),
)
_CODES = {'lung': (LUNG,), 'mediastinum': (MEDIASTINUM,), 'liver': (LIVER,),
          'abdomen': (ABDOMEN,), 'wall': (WALL,)}
# Host-specific share of the lesion's footprint on its central slice (see _host_condition).
_MIN_LUNG_AIR = 0.6
_MIN_FAT = 0.25
_MIN_PARENCHYMA = 0.9
# A lesion must differ from the anatomy it replaces by at least this much, as every lesion HU
# model intends (lesions.lesion_hu: >= 25 HU).  Real anatomy can defeat the model: a "node"
# drawn where the fat condition holds but the centre is heart or vessel (~40 HU) is invisible,
# and no radiologist would have marked it.
MIN_VISIBLE_CONTRAST_HU = 25.0
_CENTRE_TRIES = 6


def _disk(radius_px: float) -> np.ndarray:
    r = max(1, int(round(radius_px)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _largest_components(mask: np.ndarray, min_voxels: float, structure=None) -> np.ndarray:
    lab, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return mask
    vox = ndimage.sum_labels(np.ones(lab.shape, np.float32), lab, index=np.arange(1, n + 1))
    return np.isin(lab, np.flatnonzero(vox >= min_voxels) + 1)


def segment_tissues(hu: np.ndarray, spacing: Sequence[float],
                    scale: int = SEG_SCALE) -> np.ndarray:
    """Host-tissue map of a real CT volume by thresholds and morphology.

    Args:
        hu: ``(Z, H, W)`` HU, image convention (rows = posterior-ward, columns = patient left).
        spacing: (x, y, z) mm.
        scale: the map's downsampling factor (H and W divisible by it).

    Returns:
        ``(Z, H // scale, W // scale)`` uint8 codes ``OUTSIDE .. BONE`` (see ``TISSUES``); map
        pixel ``u`` covers source pixels ``scale * u .. scale * u + scale - 1``.
    """
    Z, H, W = hu.shape
    if H % scale or W % scale:
        raise ValueError(f'segment_tissues: image {W}x{H} is not divisible by {scale}')
    h, w = H // scale, W // scale
    sp = 0.5 * (float(spacing[0]) + float(spacing[1])) * scale  # mm per map pixel
    dz = float(spacing[2])
    work = np.empty((Z, h, w), np.float32)
    sm = np.empty((Z, h, w), np.float32)
    for z in range(Z):
        work[z] = cv2.resize(hu[z].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        sm[z] = cv2.GaussianBlur(work[z], (0, 0), 1.0 / sp)

    # Body: the largest 3D component of > -500 HU after a 4 mm opening (drops the table,
    # blankets and tubing), holes filled per slice.
    body = np.empty((Z, h, w), bool)
    k_open = _disk(4.0 / sp)
    for z in range(Z):
        body[z] = cv2.morphologyEx((sm[z] > -500).astype(np.uint8), cv2.MORPH_OPEN, k_open) > 0
    lab, n = ndimage.label(body)
    if n == 0:
        raise ValueError('segment_tissues: no body (nothing above -500 HU)')
    vox = ndimage.sum_labels(np.ones(lab.shape, np.float32), lab, index=np.arange(1, n + 1))
    body = lab == 1 + int(np.argmax(vox))
    for z in range(Z):
        body[z] = ndimage.binary_fill_holes(body[z])

    # Lungs: air components inside the body whose median is parenchyma-like (trachea, bowel gas
    # and the stomach are ~ -1000 HU), part of a >= 100 cm^3 3D lung; vessels filled in.
    lung = np.zeros((Z, h, w), bool)
    min_area = 300.0 / (sp * sp)  # 3 cm^2
    for z in range(Z):
        air = ((sm[z] < -400) & body[z]).astype(np.uint8)
        n, cc, stats, _ = cv2.connectedComponentsWithStats(air, connectivity=8)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] >= min_area:
                comp = cc == i
                if float(np.median(work[z][comp])) > -960:
                    lung[z] |= comp
    lung = _largest_components(lung, 100e3 / (sp * sp * dz), np.ones((3, 3, 3), bool))
    k2 = _disk(2)
    for z in range(Z):
        if lung[z].any():
            closed = cv2.morphologyEx(lung[z].astype(np.uint8), cv2.MORPH_CLOSE, k2) > 0
            lung[z] = ndimage.binary_fill_holes(closed) & body[z]
    lung_area = lung.reshape(Z, -1).sum(axis=1)
    z_max = int(np.argmax(lung_area))
    max_area = float(lung_area[z_max])

    tissue = np.where(body, BODY, OUTSIDE).astype(np.uint8)
    k_bone = _disk(2.0 / sp)
    k_lung = _disk(3.0 / sp)
    k_par = _disk(4.0 / sp)
    par = np.zeros((Z, h, w), bool)
    layers = []
    for z in range(Z):
        bone = (cv2.dilate(((sm[z] > 180) & body[z]).astype(np.uint8), k_bone) > 0) & body[z]
        lung_d = cv2.dilate(lung[z].astype(np.uint8), k_lung) > 0
        med = np.zeros((h, w), bool)
        if max_area > 0 and lung_area[z] >= 0.4 * max_area:
            hull = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(lung[z].astype(np.uint8))),
                               1)
            med = (hull > 0) & ~lung_d & body[z] & ~bone
        depth = cv2.distanceTransform(body[z].astype(np.uint8), cv2.DIST_L2, 5) * sp
        soft = (sm[z] > -150) & (sm[z] < 100)
        wall = (depth >= 3) & (depth <= 30) & ~lung_d & ~bone & ~med & soft
        if max_area > 0 and z < z_max and lung_area[z] < 0.5 * max_area:
            p = (depth > 20) & (sm[z] > 20) & (sm[z] < 100) & ~bone & ~med & ~lung_d
            par[z] = cv2.erode(p.astype(np.uint8), k_par) > 0
        layers.append((wall, med, bone))

    # Abdominal parenchyma: per slice, the largest component on the patient's right (image
    # left) is the liver, other components >= 3 cm^2 are "abdomen" (spleen, kidneys, bowel).
    liver = np.zeros((Z, h, w), bool)
    abd = np.zeros((Z, h, w), bool)
    for z in range(Z):
        if not par[z].any():
            continue
        n, cc, stats, cent = cv2.connectedComponentsWithStats(par[z].astype(np.uint8), 8)
        order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
        liver_i = next((i for i in order if cent[i][0] < w / 2
                        and stats[i, cv2.CC_STAT_AREA] * sp * sp >= 2000), None)
        for i in order:
            if i == liver_i:
                liver[z] |= cc == i
            elif stats[i, cv2.CC_STAT_AREA] * sp * sp >= 300:
                abd[z] |= cc == i
        soft_tissue = (sm[z] > 20) & (sm[z] < 100) & body[z] & ~layers[z][2]
        liver[z] = (cv2.dilate(liver[z].astype(np.uint8), k_par) > 0) & soft_tissue
        abd[z] = (cv2.dilate(abd[z].astype(np.uint8), k_par) > 0) & soft_tissue & ~liver[z]
    for z in range(Z):
        wall, med, bone = layers[z]
        t = tissue[z]
        t[wall] = WALL
        t[abd[z]] = ABDOMEN
        t[liver[z]] = LIVER
        t[med] = MEDIASTINUM
        t[bone] = BONE
        t[lung[z]] = LUNG
    return tissue


# ------------------------------------------------------------------------------------ sources
@dataclass
class RealSource:
    """A real volume prepared as a background: HU, tissue map, lesions and their exclusion."""
    name: str
    hu: np.ndarray  # (Z, H, W) int16
    spacing: Tuple[float, float, float]
    tissue: np.ndarray  # (Z, H / SEG_SCALE, W / SEG_SCALE) uint8
    lesions: List[np.ndarray]  # (Z, H, W) bool each
    lesion_organs: List[Tuple[str, int]]
    lesion_key_z: List[int]
    exclusion: np.ndarray  # (Z, H, W) bool: lesions dilated REAL_EXCLUSION_MM, +-1 slice
    body_boxes: np.ndarray  # (Z, 4) x0, y0, x1, y1 source px (inclusive), -1 where no body
    centre_slices: np.ndarray  # z where a window may be centred (lungs or liver present)
    files: Tuple[str, str]

    @property
    def num_slices(self) -> int:
        return int(self.hu.shape[0])

    @property
    def image_size(self) -> Tuple[int, int]:
        return int(self.hu.shape[2]), int(self.hu.shape[1])


def prepare_source(vol: RealCTVolume) -> RealSource:
    """Segment a real volume and locate its lesions (a few seconds per volume)."""
    if vol.label is None:
        raise ValueError(f'{vol.image_path}: the real-anatomy mode needs the lesion mask')
    W, H = vol.image_size
    if abs(vol.spacing[0] - vol.spacing[1]) > 1e-6 * vol.spacing[0]:
        raise ValueError(f'{vol.image_path}: anisotropic pixels {vol.spacing[:2]} are not '
                         'supported (DeepLesion has one in-plane spacing)')
    tissue = segment_tissues(vol.hu, vol.spacing)
    lesions = mask_lesions(vol.label)
    organs, keys = [], []
    exclusion = np.zeros(vol.hu.shape, bool)
    k_ex = _disk(REAL_EXCLUSION_MM / vol.spacing[0])
    for m in lesions:
        kz = key_slice_of_mask(m)
        keys.append(kz)
        organs.append(lesion_type_of(vol.hu[kz], m[kz]))
        for z in np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1)):
            d = cv2.dilate(m[z].astype(np.uint8), k_ex) > 0
            for zz in range(max(0, z - 1), min(vol.num_slices, z + 2)):
                exclusion[zz] |= d
    Z = vol.num_slices
    boxes = np.full((Z, 4), -1, dtype=np.int64)
    f = W // tissue.shape[2]
    for z in range(Z):
        ys, xs = np.nonzero(tissue[z])
        if len(xs):
            boxes[z] = [xs.min() * f, ys.min() * f, xs.max() * f + f - 1, ys.max() * f + f - 1]
    areas = np.stack([(tissue == LUNG).reshape(Z, -1).sum(1),
                      (tissue == LIVER).reshape(Z, -1).sum(1)])
    centre = np.flatnonzero(areas.max(axis=0) >= 0.02 * tissue.shape[1] * tissue.shape[2])
    if len(centre) == 0:
        raise ValueError(f'{vol.image_path}: no slice shows lungs or liver; not a chest or '
                         'abdomen CT the real-anatomy mode can use')
    return RealSource(vol.name, vol.hu, vol.spacing, tissue, lesions, organs, keys, exclusion,
                      boxes, centre,
                      (os.path.basename(vol.image_path), os.path.basename(vol.label_path)))


def _file_id(path: str) -> tuple:
    st = os.stat(path)
    return os.path.abspath(path), st.st_mtime_ns, st.st_size


class RealSourceCache:
    """Prepared real volumes (:class:`RealSource`), keyed by their files' identity (absolute path,
    modification time, size); the last ``max_entries`` are kept.

    Preparing a source segments the whole volume (a few seconds); a cache lets repeated calls
    (several datasets, :func:`real_lesion_masks` per volume) skip that.  A prepared source is
    only read afterwards, so one cache may serve any number of calls and forked workers.
    """

    def __init__(self, max_entries: int = 4):
        self.max_entries = int(max_entries)
        self._sources: Dict[tuple, RealSource] = {}

    def get(self, folder: str, name: str) -> RealSource:
        """The prepared ``<folder>/<name>_{image,label}.nrrd``.

        Raises:
            FileNotFoundError: one of the two files is missing.
        """
        paths = [os.path.join(folder, f'{name}_{k}.nrrd') for k in ('image', 'label')]
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f'real CT file missing: {p}')
        key = tuple(_file_id(p) for p in paths)
        src = self._sources.get(key)
        if src is None:
            if len(self._sources) >= self.max_entries:
                self._sources.pop(next(iter(self._sources)))
            src = prepare_source(load_real_ct(folder, (name,))[0])
            self._sources[key] = src
        return src


# The cache load_sources() uses when it is given none: process-wide so that every dataset and
# every real_lesion_masks() call of a process segments each real volume once.  Only
# RealSourceCache.get (through load_sources) writes to it; forked generator workers inherit it
# and only read.  Pass a RealSourceCache of your own to keep the sources out of it.
DEFAULT_SOURCE_CACHE = RealSourceCache()


def load_sources(real_ct_dir: Optional[str] = None, held_out: str = 'lung1',
                 cache: Optional[RealSourceCache] = None) -> Dict[str, RealSource]:
    """The prepared real volumes ``{name: RealSource}`` from :func:`~mmlesion.utils.locations.
    find_real_ct_dir` (``real_ct_dir`` or the default places).

    Args:
        held_out: checked here (``'lung1'`` or ``'lung2'``), so a wrong value fails before any
            work.
        cache: where prepared sources are kept (default :data:`DEFAULT_SOURCE_CACHE`).
    """
    if held_out not in REAL_CT_NAMES:
        raise ValueError(f'held_out must be one of {REAL_CT_NAMES}, got {held_out!r}')
    folder = find_real_ct_dir(real_ct_dir)
    cache = DEFAULT_SOURCE_CACHE if cache is None else cache
    return {name: cache.get(folder, name) for name in REAL_CT_NAMES}


# ------------------------------------------------------------------------------- augmentation
@dataclass
class RealAugmentation:
    """How one series is cut from a real volume.

    Output pixel ``(x, y)`` (0-based centres) samples the flipped source slice at
    ``x_f = crop_x0 + (x + 0.5) * crop_size / out_size - 0.5`` (same for y), by pixel-area
    averaging; with ``flip_lr`` the source column is ``W - 1 - x_f``.  Output slice ``k``
    (absolute) is NRRD slice ``k - 1``; HU_out = HU * hu_scale + hu_offset (+ lesions), then
    white noise of ``noise_hu`` std.
    """
    source: str
    z0: int  # NRRD z, inclusive
    z1: int
    flip_lr: bool
    crop_x0: int
    crop_y0: int
    crop_size: int
    out_size: int
    hu_scale: float
    hu_offset: float
    noise_hu: float

    def to_json(self) -> dict:
        return dict(source=self.source, source_z_range=[self.z0, self.z1], flip_lr=self.flip_lr,
                    crop_xy_size=[self.crop_x0, self.crop_y0, self.crop_size],
                    out_size=self.out_size, hu_scale=self.hu_scale, hu_offset=self.hu_offset,
                    noise_hu=self.noise_hu)

    @classmethod
    def from_json(cls, d: dict) -> 'RealAugmentation':
        x0, y0, c = d['crop_xy_size']
        return cls(d['source'], int(d['source_z_range'][0]), int(d['source_z_range'][1]),
                   bool(d['flip_lr']), int(x0), int(y0), int(c), int(d['out_size']),
                   float(d['hu_scale']), float(d['hu_offset']), float(d['noise_hu']))


def crop_resample(src2d: np.ndarray, aug: RealAugmentation, fill: float = FILL_HU,
                  interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Flip, crop (padding with ``fill``) and resample one source slice to ``out_size``^2."""
    H, W = src2d.shape
    img = src2d[:, ::-1] if aug.flip_lr else src2d
    c, x0, y0 = aug.crop_size, aug.crop_x0, aug.crop_y0
    canvas = np.full((c, c), fill, dtype=np.float32)
    xs0, ys0 = max(x0, 0), max(y0, 0)
    xs1, ys1 = min(x0 + c, W), min(y0 + c, H)
    if xs0 < xs1 and ys0 < ys1:
        canvas[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0] = img[ys0:ys1, xs0:xs1]
    return cv2.resize(canvas, (aug.out_size, aug.out_size), interpolation=interpolation)


def _resample_labels(labels2d: np.ndarray, aug: RealAugmentation, factor: int) -> np.ndarray:
    """Nearest-neighbour resampling of a 1/``factor`` resolution label map (as crop_resample)."""
    img = labels2d[:, ::-1] if aug.flip_lr else labels2d
    s = aug.crop_size / aug.out_size
    # map px u covers source px f u .. f u + f - 1: its centre is f u + (f - 1) / 2
    off = (factor - 1) / 2.0
    m = np.array([[s / factor, 0, (aug.crop_x0 + 0.5 * s - 0.5 - off) / factor],
                  [0, s / factor, (aug.crop_y0 + 0.5 * s - 0.5 - off) / factor]], np.float64)
    return cv2.warpAffine(np.ascontiguousarray(img), m, (aug.out_size, aug.out_size),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def resample_mask(mask2d: np.ndarray, aug: RealAugmentation) -> np.ndarray:
    """A source-resolution mask in the output frame: area fraction >= 0.5."""
    return crop_resample(mask2d.astype(np.float32), aug, fill=0.0) >= 0.5


def resampled_real_masks(src: RealSource, aug: RealAugmentation) -> Dict[int, np.ndarray]:
    """The real lesions that show in a series: ``{source lesion index: (L, n, n) bool}`` on
    the series' slices ``aug.z0..aug.z1`` and output grid."""
    n = aug.out_size
    out = {}
    for j, m in enumerate(src.lesions):
        sub = m[aug.z0:aug.z1 + 1]
        if sub.any():
            rm = np.stack([resample_mask(s, aug) if s.any() else np.zeros((n, n), bool)
                           for s in sub])
            if rm.any():
                out[j] = rm
    return out


def choose_augmentation(src: RealSource, rng: np.random.Generator, out_size: int,
                        max_slices: int) -> RealAugmentation:
    """Draw a window, flip, crop and intensity jitter for one series (see the module doc)."""
    Z = src.num_slices
    W, H = src.image_size
    L = min(int(rng.integers(WINDOW_SLICES[0], WINDOW_SLICES[1] + 1)), int(max_slices), Z)
    if src.lesion_key_z and rng.random() < REAL_WINDOW_P:
        kz = src.lesion_key_z[int(rng.integers(len(src.lesion_key_z)))]
        lo, hi = max(0, kz - L + 2), min(Z - L, kz - 1)  # key at least one slice from the ends
        if lo > hi:
            lo = hi = min(max(kz - L // 2, 0), Z - L)
        z0 = int(rng.integers(lo, hi + 1))
    else:
        c = int(src.centre_slices[int(rng.integers(len(src.centre_slices)))])
        z0 = min(max(c - L // 2, 0), Z - L)
    z1 = z0 + L - 1
    boxes = src.body_boxes[z0:z1 + 1]
    boxes = boxes[boxes[:, 0] >= 0]
    if len(boxes) == 0:
        bx0, by0, bx1, by1 = 0, 0, W - 1, H - 1
    else:
        bx0, by0 = boxes[:, 0].min(), boxes[:, 1].min()
        bx1, by1 = boxes[:, 2].max(), boxes[:, 3].max()
    # A square inside the scan (no padding: a filled margin would show as an edge), 78-100% of
    # its width, centred on the body with a small shift; it may cut the body's sides like a
    # clinical small field of view.
    size = int(round(min(W, H) * float(rng.uniform(*CROP_FRACTION))))
    cx = 0.5 * (bx0 + bx1) + float(rng.uniform(-CROP_SHIFT, CROP_SHIFT)) * size
    cy = 0.5 * (by0 + by1) + float(rng.uniform(-CROP_SHIFT, CROP_SHIFT)) * size
    flip = bool(rng.random() < 0.5)
    if flip:
        cx = W - 1 - cx
    x0 = min(max(int(round(cx - 0.5 * size)), 0), W - size)
    y0 = min(max(int(round(cy - 0.5 * size)), 0), H - size)
    return RealAugmentation(
        source=src.name, z0=z0, z1=z1, flip_lr=flip, crop_x0=x0, crop_y0=y0,
        crop_size=size, out_size=int(out_size),
        hu_scale=round(float(rng.uniform(*HU_SCALE)), 4),
        hu_offset=round(float(rng.uniform(*INTENSITY_JITTER_HU)), 2),
        noise_hu=round(float(rng.uniform(*NOISE_ADD_HU)), 2))


# ------------------------------------------------------------------------------------- scene
class RealScene:
    """One augmented window with what is placed into it (output frame, 0-based px, mm).

    Local slice ``i`` is absolute slice ``start + i`` at ``z = (start + i) * dz`` mm.
    """

    def __init__(self, src: RealSource, aug: RealAugmentation):
        self.src = src
        self.aug = aug
        self.dz = float(src.spacing[2])
        self.spacing_mm = float(format_number(src.spacing[0] * aug.crop_size / aug.out_size))
        self.start = nrrd_z_to_slice(aug.z0)
        self.num = aug.z1 - aug.z0 + 1
        n = aug.out_size
        self.width = self.height = n
        f = src.hu.shape[2] // src.tissue.shape[2]
        zs = range(aug.z0, aug.z1 + 1)
        self.base = np.stack([crop_resample(src.hu[z], aug) * np.float32(aug.hu_scale)
                              + np.float32(aug.hu_offset) for z in zs])
        self.tissue = np.stack([_resample_labels(src.tissue[z], aug, f) for z in zs])
        self.exclusion = np.stack([crop_resample(src.exclusion[z].astype(np.float32), aug, 0.0)
                                   > 0 for z in zs])
        # (source lesion index, (L, n, n) bool)
        self.real_masks = list(resampled_real_masks(src, aug).items())
        self.grid = Grid(n, n, np.zeros((n, n), np.float32), np.zeros((n, n), np.float32))
        self.lesions: List[Lesion] = []
        self.tubes: List[LookAlike] = []
        self._smooth = None

    def z_mm(self, i: float) -> float:
        return (self.start + i) * self.dz

    def local_index(self, z_mm: float) -> int:
        return int(min(max(round(z_mm / self.dz - self.start), 0), self.num - 1))

    @property
    def smooth(self) -> np.ndarray:
        if self._smooth is None:
            self._smooth = np.stack([cv2.GaussianBlur(b, (0, 0), 1.0) for b in self.base])
        return self._smooth

    def _occupied(self, i: int, avoid_tubes: bool) -> np.ndarray:
        occ = np.zeros((self.height, self.width), bool)
        z = self.z_mm(i)
        shapes = [(les.shape, les.shape.lobe_max) for les in self.lesions]
        if avoid_tubes:
            shapes += [(la.tube, 0.0) for la in self.tubes]
        for shape, lobe in shapes:
            for off in (-self.dz / 3.0, 0.0, self.dz / 3.0):
                sec = shape.section(z + off)
                if sec is None:
                    continue
                r = max(sec[2], sec[3]) * (1.0 + lobe) + 2.0
                circle = (sec[0], sec[1], r, r, 0.0)
                win = section_window(circle, 1.0, self.width, self.height)
                if win is None:
                    continue
                xs, ys = self.grid.coords(win, warped=False)
                occ[win[1]:win[3], win[0]:win[2]] |= soft_ellipse(xs, ys, circle, 1.0) > 0.01
        return occ

    def free(self, i: int, codes: Sequence[int], avoid_tubes: bool = True) -> np.ndarray:
        """Pixels of slice ``i`` in the host tissues, off the real lesions and placed objects."""
        return (np.isin(self.tissue[i], codes) & ~self.exclusion[i]
                & ~self._occupied(i, avoid_tubes))

    @staticmethod
    def distance(free: np.ndarray) -> np.ndarray:
        """Distance (px) from each pixel to the nearest non-free pixel (the border is non-free)."""
        padded = np.zeros((free.shape[0] + 2, free.shape[1] + 2), np.uint8)
        padded[1:-1, 1:-1] = free
        return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]

    def host_condition(self, host: LesionHost, i: int, r_px: float) -> np.ndarray:
        """Where a lesion of radius ``r_px`` centred there sits on the right kind of tissue."""
        k = 2 * max(1, int(math.ceil(r_px))) + 1
        img = self.smooth[i]
        if host.name == 'lung':
            ind, lo = self.base[i] < -500, _MIN_LUNG_AIR
        elif host.name == 'mediastinum':
            ind, lo = (img > -150) & (img < -30), _MIN_FAT
        elif host.model == 'parenchyma':
            ind, lo = (img > 0) & (img < 110), _MIN_PARENCHYMA
        else:
            return np.ones(img.shape, bool)
        frac = cv2.boxFilter(ind.astype(np.float32), -1, (k, k), normalize=True,
                             borderType=cv2.BORDER_CONSTANT)
        return frac >= lo

    def host_hu_at(self, x: float, y: float, i: int, r_px: float) -> float:
        """Median HU of the background within ``r_px`` of (x, y) on slice ``i``."""
        r = max(1.0, r_px)
        win = section_window((x, y, r, r, 0.0), 0.0, self.width, self.height)
        xs, ys = self.grid.coords(win, warped=False)
        sel = (xs - x) ** 2 + (ys - y) ** 2 <= r * r
        vals = self.base[i][win[1]:win[3], win[0]:win[2]][sel]
        return float(np.median(vals)) if vals.size else float(self.base[i][int(y), int(x)])

    def hosts_at(self, i: int, min_radius_px: float) -> List[LesionHost]:
        """Lesion hosts with room for the smallest lesion on slice ``i``."""
        out = []
        for host in REAL_LESION_HOSTS:
            codes = _CODES[next(iter(host.tissues))]
            if np.isin(self.tissue[i], codes).sum() < math.pi * min_radius_px ** 2 * 2:
                continue
            out.append(host)
        return out


def _codes(host) -> Tuple[int, ...]:
    return _CODES[next(iter(host.tissues))]


def place_real_lesion(scene: RealScene, host: LesionHost, zc_mm: float, marked: bool,
                      rng: np.random.Generator, min_c_mm: float,
                      attempts: int = 5) -> Optional[Lesion]:
    """Place an ellipsoid lesion centred at height ``zc_mm`` in ``host``, or return None.

    On every window slice the lesion reaches (its partial-volume slab included) the centre must
    be further than the cross-section's radius + soft edge + 1 px from anything that is not free
    host tissue; on the central slice the host condition holds too.  Of up to 6 admissible
    centres the first where the lesion's HU differs from the anatomy it replaces by at least
    :data:`MIN_VISIBLE_CONTRAST_HU` is taken.  Sizes shrink by 20% per failed attempt, the last
    at the minimum (5 mm, or 3 px on coarse images).
    """
    sp, dz = scene.spacing_mm, scene.dz
    d_min = max(MIN_DIAMETER_MM, 3.0 * sp)
    diameter = max(sample_diameter_mm(host, marked, MAX_DIAMETER_MM, rng), d_min)
    aspect, theta, edge, lobes = sample_lesion_shape(rng)
    lobe_max = sum(e for _, e, _ in lobes)
    c_factor = float(rng.uniform(0.7, 1.3))
    codes = _codes(host)
    ic = scene.local_index(zc_mm)
    diameters = [diameter * 0.8 ** i for i in range(attempts - 1)
                 if diameter * 0.8 ** i > d_min] + [d_min]
    for diameter in diameters:
        a_mm = diameter / 2.0
        b_mm = a_mm * aspect
        c_mm = min(max(math.sqrt(a_mm * b_mm) * c_factor, min_c_mm), MAX_C_MM)
        a_px = a_mm / sp
        ok = scene.host_condition(host, ic, a_px)
        for i in range(scene.num):
            gap = abs(scene.z_mm(i) - zc_mm) - dz / 3.0
            if gap >= c_mm:
                continue
            t = max(gap, 0.0) / c_mm
            need = a_px * math.sqrt(1.0 - t * t) * (1.0 + lobe_max) + edge + 1.0
            ok &= scene.distance(scene.free(i, codes)) >= need
            if not ok.any():
                break
        cand = np.flatnonzero(ok)
        for _try in range(min(_CENTRE_TRIES, len(cand))):
            cy, cx = divmod(int(cand[rng.integers(len(cand))]), scene.width)
            cx += float(rng.uniform(-0.5, 0.5))
            cy += float(rng.uniform(-0.5, 0.5))
            host_hu = scene.host_hu_at(cx, cy, ic, 0.8 * b_mm / sp)
            hu, kind = lesion_hu(host.model, host_hu, rng)
            if abs(hu - host_hu) < MIN_VISIBLE_CONTRAST_HU:
                continue
            shape = Ellipsoid(cx, cy, zc_mm, a_px, b_mm / sp, c_mm, theta, edge, lobes)
            lesion = Lesion(len(scene.lesions), shape, host, host_hu, hu,
                            float(rng.uniform(3, 8)), kind, 0, marked)
            scene.lesions.append(lesion)
            return lesion
    return None


def place_real_tube(scene: RealScene, th: TubeHost,
                    rng: np.random.Generator) -> Optional[LookAlike]:
    """Start a vessel-like tube in its host at a random slice of the window (or return None)."""
    sp, dz = scene.spacing_mm, scene.dz
    codes = _CODES[th.name]
    present = [i for i in range(scene.num) if np.isin(scene.tissue[i], codes).any()]
    if not present:
        return None
    i0 = present[int(rng.integers(len(present)))]
    r_px = max(float(rng.uniform(*th.radius_mm)) / sp, 1.0)
    z0 = scene.z_mm(i0) + float(rng.uniform(-0.4, 0.4)) * dz
    dist = scene.distance(scene.free(i0, codes))
    cand = np.flatnonzero(dist >= r_px + 1.5)
    if len(cand) == 0:
        return None
    y0, x0 = divmod(int(cand[rng.integers(len(cand))]), scene.width)
    x0 += float(rng.uniform(-0.5, 0.5))
    y0 += float(rng.uniform(-0.5, 0.5))
    tube = sample_tube(rng, th.kind, x0, y0, z0, r_px, sp, scene.z_mm(-0.5),
                       scene.z_mm(scene.num - 0.5))
    if th.name == 'lung':
        hu = float(rng.uniform(0, 60))  # as dense as a solid nodule
    else:  # unenhanced hepatic vessels are darker than the liver
        hu = scene.host_hu_at(x0, y0, i0, r_px + 2) - float(rng.uniform(15, 35))
    la = LookAlike(len(scene.tubes), 'vessel', th, tube, hu, None, 0.0, 4.0)
    scene.tubes.append(la)
    return la


def _unit_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """White noise blurred like the phantom's (sigma 0.6 px), unit std."""
    g = cv2.GaussianBlur(rng.standard_normal(shape, dtype=np.float32), (5, 5), 0.6,
                         borderType=cv2.BORDER_REFLECT)
    # a separable blur of white noise has std sum(k^2) of its 1D kernel k
    return g * np.float32(1.0 / gauss_kernel_sq_sum(0.6, 5))


@functools.lru_cache(maxsize=None)
def _unit_noise_stat() -> float:
    """estimate_noise_hu() of a unit-std :func:`_unit_noise` field (a fixed constant, computed
    once)."""
    field_ = _unit_noise(np.random.default_rng(0), (256, 256))
    return estimate_noise_hu(field_, np.ones(field_.shape, bool))


# ------------------------------------------------------------------------------------ series
@dataclass
class RealSeriesLayout(SeriesLayout):
    source: str = ''


def plan_real_layout(num_volumes: int, seed: int, held_out: str = 'lung1',
                     names: Sequence[str] = REAL_CT_NAMES) -> List[RealSeriesLayout]:
    """Series of a real-anatomy dataset, one sub-volume each, split by real patient.

    ``held_out`` gives the test sub-volumes (about 15%, at least 1 from 2 sub-volumes on); the
    other volume gives val (about 15%, at least 1 from 3 on) and train, whose roles follow the
    phantom layout (about 15% V_M, 10% V_H^test, the rest V_H).
    """
    if held_out not in names:
        raise ValueError(f'held_out must be one of {tuple(names)}, got {held_out!r}')
    train_src = next(n for n in names if n != held_out)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _LAYOUT_STREAM]))
    n = int(num_volumes)
    n_test = max(1, int(round(0.15 * n))) if n >= 2 else 0
    n_val = max(1, int(round(0.15 * n))) if n >= 3 else 0
    n_train = n - n_test - n_val
    splits = ['train'] * n_train + ['val'] * n_val
    splits = [splits[int(i)] for i in rng.permutation(len(splits))]
    roles = [s if s != 'train' else 'V_H' for s in splits]
    train_idx = [i for i, s in enumerate(splits) if s == 'train']
    n_vm = max(1, int(round(0.15 * n_train))) if n_train >= 3 else 0
    n_vht = max(1, int(round(0.10 * n_train))) if n_train >= 4 else 0
    for rank, t in enumerate(rng.permutation(len(train_idx))):
        if rank < n_vm:
            roles[train_idx[int(t)]] = 'V_M'
        elif rank < n_vm + n_vht:
            roles[train_idx[int(t)]] = 'V_H_test'
    per_source = [(train_src, splits, roles), (held_out, ['test'] * n_test, ['test'] * n_test)]
    layouts = []
    for src, sp_list, role_list in per_source:
        if len(sp_list) > 99 * 99:
            raise ValueError(f'at most {99 * 99} sub-volumes per real volume, asked for '
                             f'{len(sp_list)} from {src}')
        patient = REAL_CT_IDS[src][0]
        for i, (split, role) in enumerate(zip(sp_list, role_list)):
            layouts.append(RealSeriesLayout(patient, i // 99 + 1, i % 99 + 1, 1, split, '', None,
                                            [role], source=src))
    layouts.sort(key=lambda lay: (lay.patient, lay.study, lay.series))
    return layouts


@dataclass
class RealSeries:
    layout: RealSeriesLayout
    name: str
    scene: RealScene
    sv: SubVolume
    real_marked: Dict[int, bool] = field(default_factory=dict)
    noise_amp: float = 0.0
    noise_seed: Optional[np.random.SeedSequence] = None


def _region(scene: RealScene) -> str:
    n = scene.width * scene.height
    lung = max((scene.tissue == LUNG).reshape(scene.num, -1).sum(1)) / n
    abd = max(np.isin(scene.tissue, (LIVER, ABDOMEN)).reshape(scene.num, -1).sum(1)) / n
    if lung >= 0.05 and abd >= 0.02:
        return 'chest_abdomen'
    if lung >= 0.05:
        return 'chest'
    if abd >= 0.02:
        return 'abdomen'
    return 'neck'


def plan_real_series(layout: RealSeriesLayout, src: RealSource, seed: int, image_size: int,
                     max_slices: int, small_image_fraction: float,
                     noisy_fraction: float) -> RealSeries:
    """Draw the window, augmentation, look-alikes and lesions of one real-anatomy series."""
    ss = np.random.SeedSequence([int(seed), _SERIES_STREAM, layout.patient, layout.study,
                                 layout.series])
    geo_seed, noise_seed = ss.spawn(2)
    rng = np.random.default_rng(geo_seed)
    size = int(image_size)
    if rng.random() < small_image_fraction:
        size = max(MIN_IMAGE_SIZE, int(round(0.75 * image_size / 2.0)) * 2)
    aug = choose_augmentation(src, rng, size, max_slices)
    scene = RealScene(src, aug)
    name = series_name(layout.patient, layout.study, layout.series)
    start, end = scene.start, scene.start + scene.num - 1
    dz, sp = scene.dz, scene.spacing_mm

    for th in REAL_TUBE_HOSTS:
        for _ in range(int(rng.integers(th.count[0], th.count[1] + 1))):
            place_real_tube(scene, th, rng)

    # Real lesions: marked when their largest cross-section lies in the window (mostly).
    real_marked = {}
    for j, _ in scene.real_masks:
        kz = src.lesion_key_z[j]
        real_marked[j] = bool(aug.z0 <= kz <= aug.z1 and rng.random() < REAL_MARK_P)
    n_marked = int(rng.choice(MARKED_PER_VOLUME[0], p=MARKED_PER_VOLUME[1]))
    n_synth = max(0, n_marked - sum(real_marked.values()))
    if n_synth == 0 and not any(real_marked.values()):
        n_synth = 1

    min_c = max(2.0, 0.5 * dz + 1.0)  # every lesion shows on at least one slice
    min_r = max(MIN_DIAMETER_MM, 3.0 * sp) / 2.0 / sp
    inner = list(range(1, scene.num - 1)) if scene.num >= 3 else list(range(scene.num))
    key_slices = []
    for _ in range(n_synth):
        lesion = None
        for _try in range(8):
            i = inner[int(rng.integers(len(inner)))]
            hosts = scene.hosts_at(i, min_r)
            if not hosts:
                continue
            p = np.array([h.weight for h in hosts])
            first = hosts[int(rng.choice(len(hosts), p=p / p.sum()))]
            order = [first] + sorted((h for h in hosts if h is not first), key=lambda h: -h.weight)
            zc = scene.z_mm(i + float(rng.uniform(-0.3, 0.3)))
            for host in order:
                lesion = place_real_lesion(scene, host, zc, True, rng, min_c)
                if lesion is not None:
                    break
            if lesion is not None:
                key_slices.append(start + i)
                lesion.noisy = bool(rng.random() < noisy_fraction)
                break
        if lesion is None:
            raise RuntimeError(f'real-anatomy series {name} ({src.name} z {aug.z0}-{aug.z1}): no '
                               'room for a marked lesion on 8 slices in any host')
    # an unmarked real lesion takes one of the unmarked slots (the ~45% rule holds overall)
    n_unmarked = min(int(rng.poisson(UNMARKED_MEAN)), 6) - sum(
        not marked for marked in real_marked.values())
    for _ in range(max(n_unmarked, 0)):
        zc = float(rng.uniform(start, end)) * dz
        hosts = scene.hosts_at(scene.local_index(zc), min_r)
        if not hosts:
            continue
        p = np.array([h.weight for h in hosts])
        for _try in range(3):
            host = hosts[int(rng.choice(len(hosts), p=p / p.sum()))]
            if place_real_lesion(scene, host, zc, False, rng, min_c) is not None:
                break
    for j, m in scene.real_masks:
        if real_marked[j]:
            key_slices.append(start + key_slice_of_mask(m))
    key = volume_key(layout.patient, layout.study, layout.series, start, end)
    sv = SubVolume(0, start, end, sorted(key_slices), layout.roles[0], key)
    return RealSeries(layout, name, scene, sv, real_marked, noise_seed=noise_seed)


def render_real_series(series: RealSeries, out_dir: str) -> Tuple[Dict[tuple, Dict[int, tuple]],
                                                                  int]:
    """Write the series' PNG slices; return the visible objects' masks per slice and the count.

    Records map ('lesion', index) / ('lookalike', index) to ``{slice: (window, bool mask,
    centre weight or None)}`` as in the phantom generator.
    """
    scene = series.scene
    rng = np.random.default_rng(series.noise_seed)
    H, W = scene.height, scene.width
    dz = scene.dz
    soft = np.isin(scene.tissue[scene.num // 2], (WALL, LIVER, ABDOMEN, MEDIASTINUM)) & (
        np.abs(scene.base[scene.num // 2]) < 150)
    # Lesion interiors get noise of the image's own level (estimated on the jittered slice).
    noise_hu = estimate_noise_hu(scene.base[scene.num // 2], soft)
    series.noise_amp = noise_hu
    amp = np.float32(noise_hu / _unit_noise_stat())
    tex_sigma = 1.5
    tex_k = int(2 * math.ceil(3 * tex_sigma) + 1)
    tex_norm = np.float32(1.0 / gauss_kernel_sq_sum(tex_sigma, tex_k))
    records: Dict[tuple, Dict[int, tuple]] = {}
    for i in range(scene.num):
        k = scene.start + i
        z = scene.z_mm(i)
        img = scene.base[i].copy()
        tex = cv2.GaussianBlur(rng.standard_normal((H, W), dtype=np.float32), (tex_k, tex_k),
                               tex_sigma, borderType=cv2.BORDER_REFLECT) * tex_norm
        noise = _unit_noise(rng, (H, W)) * amp
        covers = {}
        for la in scene.tubes:
            if la.host.name not in covers:
                cov = np.isin(scene.tissue[i], _CODES[la.host.name]).astype(np.float32)
                cov = cv2.GaussianBlur(cov, (3, 3), 0.8) * (~scene.exclusion[i])
                covers[la.host.name] = cov
            win, w = pv_weight(la.tube, z, dz, scene.grid, la.tube.edge_px)
            if win is None:
                continue
            x0, y0, x1, y1 = win
            w = w * covers[la.host.name][y0:y1, x0:x1]
            view = img[y0:y1, x0:x1]
            view += w * (np.float32(la.hu) + la.tex_hu * tex[y0:y1, x0:x1]
                         + noise[y0:y1, x0:x1] - view)
            m = w >= 0.5
            if m.any():
                records.setdefault(('lookalike', la.index), {})[k] = (win, m, None)
        for les in scene.lesions:
            sh = les.shape
            win, w = pv_weight(sh, z, dz, scene.grid, sh.edge_px, sh.lobes)
            if win is None:
                continue
            x0, y0, x1, y1 = win
            view = img[y0:y1, x0:x1]
            view += w * (np.float32(les.hu) + np.float32(les.tex_hu) * tex[y0:y1, x0:x1]
                         + noise[y0:y1, x0:x1] - view)
            m = w >= 0.5
            if m.any():
                ix, iy = int(round(sh.cx)), int(round(sh.cy))
                wc = None
                if x0 <= ix < x1 and y0 <= iy < y1:
                    wc = float(w[iy - y0, ix - x0])
                records.setdefault(('lesion', les.index), {})[k] = (win, m, wc)
        if scene.aug.noise_hu > 0:
            img += np.float32(scene.aug.noise_hu) * rng.standard_normal((H, W), dtype=np.float32)
        atomic_write_bytes(os.path.join(out_dir, 'Images_png', slice_file_name(series.name, k)),
                           hu_to_png_clipped(img))
    return records, scene.num


def _real_lesion_truth(series: RealSeries, j: int, mask: np.ndarray, lesion_id: int,
                       series_index: int) -> dict:
    scene = series.scene
    sp = scene.spacing_mm
    d = describe_mask_lesion(mask, (sp, sp), slice_of=lambda i: scene.start + i)
    organ, ltype = scene.src.lesion_organs[j]
    return dict(
        id=lesion_id, series_index=series_index, origin='real', organ=organ, lesion_type=ltype,
        kind='real', marked=series.real_marked[j], noisy=False, csv_row=None,
        key_slice_relative=d['key_slice'] - scene.start,
        source_volume=scene.src.name, source_lesion_index=j,
        source_key_slice=nrrd_z_to_slice(scene.src.lesion_key_z[j]),
        volume_mm3=round(d['num_voxels'] * sp * sp * scene.dz, 3), **d)


def _real_body_level(n_src: int, dz: float, key: int) -> float:
    return body_level(key - 1, n_src, dz)


def _real_window_for(organ: str) -> Tuple[int, int]:
    return LUNG_WINDOW if organ == 'lung' else SOFT_WINDOW


def _real_series_volumes(layout: RealSeriesLayout, out_dir: str, sources: Dict[str, RealSource],
                         seed: int, image_size: int, max_slices: int,
                         small_image_fraction: float, noisy_fraction: float
                         ) -> Tuple[List[Tuple[dict, dict]], int]:
    """Plan and render one real-anatomy series (one sub-volume): ``[(truth volume, DL_info row
    arguments)]`` (lesion and look-alike ids local, see
    :func:`~.series.assemble_series`) and the slices written.  Depends only on the seed
    and the layout."""
    src = sources[layout.source]
    series = plan_real_series(layout, src, seed, image_size, max_slices,
                              small_image_fraction, noisy_fraction)
    records, written = render_real_series(series, out_dir)
    scene, sv = series.scene, series.sv
    sp, dz = scene.spacing_mm, scene.dz
    geom = SeriesGeometry(width=scene.width, height=scene.height, spacing_mm=sp,
                          slice_interval_mm=dz)
    vol_lesions = []
    for les in scene.lesions:
        recs = records.get(('lesion', les.index))
        if not recs:
            if les.marked:
                raise RuntimeError(f'{sv.key}: marked lesion invisible (internal error)')
            continue
        t = lesion_truth(geom, sv, les, recs, len(vol_lesions))
        t['origin'] = 'synthetic'
        vol_lesions.append(t)
    for n_real, (j, mask) in enumerate(scene.real_masks):
        vol_lesions.append(_real_lesion_truth(series, j, mask, len(vol_lesions),
                                              len(scene.lesions) + n_real))
    vol_lookalikes = []
    for la in scene.tubes:
        recs = records.get(('lookalike', la.index))
        if recs:
            vol_lookalikes.append(lookalike_truth(geom, la, recs, len(vol_lookalikes)))
    volume = dict(
        key=sv.key, series=series.name, patient_index=layout.patient,
        study_index=layout.study, series_id=layout.series, subvolume_index=0,
        slice_range=[sv.start, sv.end], num_slices=sv.end - sv.start + 1,
        spacing=[sp, sp, dz], slice_interval=dz, image_size=[scene.width, scene.height],
        split=layout.split, role=sv.role, complete=sv.role != 'V_H', region=_region(scene),
        noise_hu=round3(series.noise_amp), soft_window=list(SOFT_WINDOW), gender=None, age=None,
        marked_key_slices=sv.key_slices, lesions=vol_lesions, lookalikes=vol_lookalikes,
        anatomy='real', source_volume=src.name, augmentation=scene.aug.to_json())
    row_args = dict(
        layout=layout, name=series.name, width=scene.width, height=scene.height,
        spacing_mm=sp, slice_interval_mm=dz, slice_range=(sv.start, sv.end),
        body_level=functools.partial(_real_body_level, src.num_slices, dz),
        window_for=_real_window_for)
    return [(volume, row_args)], written


def generate_real_volumes(out_dir: str, sources: Dict[str, RealSource], num_volumes: int,
                          seed: int, image_size: int, max_slices: int,
                          small_image_fraction: float, noisy_fraction: float, held_out: str,
                          verbose: bool, t0: float, workers: int = 1
                          ) -> Tuple[List[list], List[dict], int, dict]:
    """The real-anatomy series; returns (DL_info rows, truth volumes, slices written, info).

    ``workers`` > 1 renders the series in that many forked processes; the bytes written do not
    depend on it."""
    layouts = plan_real_layout(num_volumes, seed, held_out)
    args = (out_dir, sources, seed, image_size, max_slices, small_image_fraction,
            noisy_fraction)
    rows, volumes, n_slices = assemble_series(
        map_series(_real_series_volumes, layouts, args, workers), seed=seed,
        num_volumes=num_volumes, what='real-anatomy ', verbose=verbose, t0=t0)
    info = dict(
        anatomy='real', held_out=held_out,
        sources={name: dict(files=list(s.files), shape_zyx=list(s.hu.shape),
                            spacing=list(s.spacing),
                            splits=sorted({v['split'] for v in volumes
                                           if v['source_volume'] == name}))
                 for name, s in sorted(sources.items())},
        real_ct_license='pyradiomics 3.0.1 test data, BSD-3-Clause',
        # These texts are part of truth.json's bytes: the function they name now lives in
        # mmlesion.synthetic.lesion_masks, but rewording them would change every dataset.
        frames=dict(
            real_slice='absolute slice = NRRD z + 1 of the source volume (Slice_range and file '
                       'names keep the real indices)',
            augmentation='output pixel x samples the flipped source slice at crop_x0 + (x + 0.5) '
                         '* crop_size / out_size - 0.5 (same for y) by area averaging; with '
                         'flip_lr the source column is W - 1 - that; HU * hu_scale + hu_offset, '
                         'then white noise of noise_hu std',
            real_lesion='origin "real": its mask resampled like the image (area fraction >= '
                        '0.5), described with mmlesion.datasets.realct.describe_mask_lesion; '
                        'key slice = largest cross-section in the window'))
    return rows, volumes, n_slices, info


def real_lesion_masks(volume: dict, real_ct_dir: Optional[str] = None,
                      sources: Optional[Dict[str, RealSource]] = None) -> Dict[int, np.ndarray]:
    """The real lesions of a ``truth.json`` real-anatomy volume in its output frame.

    Args:
        volume: one entry of ``truth.json``'s ``volumes`` (``anatomy == 'real'``).
        real_ct_dir: where the real CTs are (see :func:`load_sources`); unused with ``sources``.
        sources: the prepared real volumes (:func:`load_sources`), e.g. when masks of many
            volumes are wanted.

    Returns:
        ``{source lesion index: (num_slices, H, W) bool}``, slice ``i`` = absolute slice
        ``slice_range[0] + i``, masks as the generator measured them.
    """
    if volume.get('anatomy') != 'real':
        raise ValueError(f'volume {volume.get("key")!r} is not a real-anatomy volume')
    aug = RealAugmentation.from_json(volume['augmentation'])
    if sources is None:
        sources = load_sources(real_ct_dir)
    return resampled_real_masks(sources[aug.source], aug)
