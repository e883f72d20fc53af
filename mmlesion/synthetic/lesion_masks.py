"""Real lesions described from their masks the way DeepLesion describes a lesion.

A lesion is one 3D connected component (26-connectivity) of a mask value (:func:`mask_lesions`).
Its *key slice* is its largest cross-section (most pixels; ties go to the slice nearest the
lesion's mean z, then the lower one), its RECIST axes are measured there with
:func:`~mmlesion.datasets.recist.recist_from_mask` (long axis = longest diameter in mm, short
axis = longest perpendicular), and its DeepLesion box is that RECIST extent padded by 5 px
(:func:`describe_mask_lesion`).  Masks are ``(Z, H, W)`` arrays in image convention; pixels are
0-based (x = column, y = row, centres at integers), z the array's slice index unless mapped.

Also: the organ / coarse type of a real lesion from its surroundings (:func:`lesion_type_of`)
and the noise level of a real slice (:func:`estimate_noise_hu`), which the real-anatomy mode
gives the lesions it inserts.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.recist import recist_box, recist_from_mask

from .nrrd_volume import nrrd_z_to_slice
from .writer import RECIST_PAD_PX, round3


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
        recist = [round3(v) for v in r['long_axis'] + r['short_axis']]
        box = [round3(v) for v in recist_box(recist, pad_px, (W, H))]
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
        box2d=ks['box'], center_px=[round3(xs.mean()), round3(ys.mean())],
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
