"""Coordinate, box and slice conventions of mmlesion, stated once (docs/method.md#conventions).

Every other module refers here instead of re-explaining them.

**Pixels (x, y).**

* mmlesion's frame -- everything in memory, our JSON and mmdet -- uses **0-based** pixel
  coordinates with *continuous corners*: a box ``[x1, y1, x2, y2]`` spans ``x2 - x1`` pixels,
  a ``W x H`` image spans ``[0, W] x [0, H]``.
* DeepLesion's ``DL_info.csv`` and the Lesion Harvester (LH) release files are **1-based**:
  subtract 1 to get 0-based pixels.
* The reference evaluators (3DCE, MULAN, LH ``evaluation.py``) measure overlaps with the
  ``+1`` *inclusive-pixel* convention (width ``x2 - x1 + 1``): :data:`EVAL_PLUS_ONE`.  IoU is
  translation invariant (the 0/1-based shift does not change it) but not convention invariant
  (a 12 px lesion gains ~0.1 IoU under ``+1``).  Box overlaps take a ``plus_one`` argument
  (:mod:`mmlesion.structures.boxes`); linking detections in the stacker uses continuous
  corners (:data:`STACK_PLUS_ONE`).

**Slices (z).**

* mmlesion's frame: z is the **absolute** DeepLesion slice index (the ``KKK`` of
  ``Images_png/PPPPPP_SS_RR/KKK.png``).
* LH files: z is **relative** to the sub-volume's first slice, the ``SSS`` of the key
  ``PPPPPP_SS_RR_SSS-EEE`` (:func:`mmlesion.structures.volume.parse_volume_key`).
* A 3D box ``[x1, y1, z1, x2, y2, z2]`` has a *continuous* z extent: slice ``k`` spans
  ``[k - 0.5, k + 0.5]`` (the half-integer z values of LH ``3D-Box.pkl``;
  :func:`slice_extent`).  The LENS release gives the first and last slice a lesion covers
  (inclusive integers), widened by half a slice on import.

**Frames.** :data:`FRAMES` names the two frames a tracklet or box file can be in: ``'mmlesion'``
(absolute z, 0-based x/y) and ``'lh'`` (relative z, 1-based x/y).  Conversion between them is
:func:`convert_frame`; the LH file readers and writers
(:mod:`mmlesion.evaluation.detection_io`, :mod:`mmlesion.datasets.converters.annotation_release`)
are the only places where data changes frame.

**Tracklets.** A 3D proposal is a :class:`~mmlesion.structures.tracklet.Tracklet`: 2D boxes
``[x1, y1, x2, y2, score]`` on slices ``z`` of one sub-volume, score = the maximum slice score.
"""
from typing import Tuple

import numpy as np

__all__ = ['FRAMES', 'MMLESION_FRAME', 'LH_FRAME', 'EVAL_PLUS_ONE', 'STACK_PLUS_ONE',
           'LH_XY_BASE', 'check_frame', 'convert_frame', 'slice_extent']

MMLESION_FRAME = 'mmlesion'
LH_FRAME = 'lh'
FRAMES = (MMLESION_FRAME, LH_FRAME)

# the reference evaluators' inclusive-pixel IoU (3DCE, MULAN, Lesion Harvester evaluation.py)
EVAL_PLUS_ONE = True
# the stacker links on continuous corners, the convention of the detector's boxes
STACK_PLUS_ONE = False
# the first pixel of a row is x = 1 in DL_info.csv and the LH files
LH_XY_BASE = 1.0


def check_frame(frame: str, name: str = 'frame') -> None:
    """Raise a ValueError naming the frames unless ``frame`` is one of :data:`FRAMES`."""
    if frame not in FRAMES:
        raise ValueError(f'{name} must be one of {FRAMES} (mmlesion: absolute z, 0-based x/y; '
                         f'lh: relative z, 1-based x/y), got {frame!r}')


def convert_frame(z: np.ndarray, xy: np.ndarray, start: np.ndarray, src: str,
                  dst: str) -> Tuple[np.ndarray, np.ndarray]:
    """Change the frame of slice indices and pixel coordinates.

    Args:
        z: ``(n,)`` slice indices in ``src``.
        xy: ``(n, k)`` pixel coordinates (every column an x or a y) in ``src``.
        start: ``(n,)`` or scalar: first slice (absolute) of each row's sub-volume.
        src, dst: ``'mmlesion'`` or ``'lh'``.

    Returns:
        ``(z, xy)`` in ``dst``, new float64 arrays (z keeps an integer dtype when given one).
        ``lh -> mmlesion`` is ``z + start, xy - 1``; ``mmlesion -> lh`` the reverse.
    """
    check_frame(src, 'src')
    check_frame(dst, 'dst')
    z = np.array(z, copy=True)
    xy = np.array(xy, dtype=np.float64, copy=True)
    if src == dst:
        return z, xy
    sign = 1 if src == LH_FRAME else -1
    z = z + sign * np.asarray(start, dtype=z.dtype if z.dtype.kind in 'iu' else np.float64)
    xy -= sign * LH_XY_BASE
    return z, xy


def slice_extent(z_first, z_last) -> Tuple[float, float]:
    """Continuous z extent ``(z_first - 0.5, z_last + 0.5)`` of slices ``z_first..z_last``."""
    return float(z_first) - 0.5, float(z_last) + 0.5
