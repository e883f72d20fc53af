"""RECIST long and short axes of a 2D lesion cross-section, and DeepLesion's RECIST box.

DeepLesion's marks are RECIST measurements: the longest diameter of the lesion on its key slice
(long axis) and the longest diameter perpendicular to it (short axis).  DeepLesion's
``Bounding_boxes`` (and the Lesion Harvester boxes) are the extent of those two segments padded by
5 px.  This module measures both axes on a binary mask (a synthetic phantom's cross-section, or a
real CT lesion mask) with pure numpy, deterministically.

Frames: every coordinate here is a 0-based pixel coordinate with pixel *centres* at integers
(x = column, y = row).  DL_info.csv and the Lesion Harvester pickles are 1-based: add 1 when
writing them.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

# Step (px) between candidate short-axis lines, and between samples along a line.
_LINE_STEP_PX = 0.5
_SAMPLE_STEP_PX = 0.1


def _boundary_pixels(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of mask pixels with a 4-neighbour outside the mask (the image edge is outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
                & padded[1:-1, :-2] & padded[1:-1, 2:])
    ys, xs = np.nonzero(mask & ~interior)
    return xs, ys


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of integer points (N x 2), Andrew's monotone chain.

    Collinear points are dropped; with fewer than 3 distinct points the distinct points are
    returned.  Integer input keeps the orientation tests exact.
    """
    pts = np.unique(points, axis=0)  # sorted by x, then y
    if len(pts) < 3:
        return pts

    def half(seq):
        chain = []
        for p in seq:
            while len(chain) >= 2:
                (ox, oy), (ax, ay) = chain[-2], chain[-1]
                if (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) > 0:
                    break
                chain.pop()
            chain.append((int(p[0]), int(p[1])))
        return chain

    pts_list = pts.tolist()
    lower = half(pts_list)
    upper = half(pts_list[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=np.int64)


def recist_from_mask(mask2d: np.ndarray,
                     spacing_xy: Sequence[float] = (1.0, 1.0)) -> Dict[str, object]:
    """Measure the RECIST long and short axes of a binary cross-section.

    Definitions (0-based pixel coordinates, pixel centres at integers):

    - **Long axis**: the two mask pixel centres furthest apart, distance measured in mm
      (``spacing_xy`` = (x, y) mm/px; with isotropic spacing this is the pixel distance).  The
      maximum is attained on the convex hull of the boundary pixels (mask pixels with a
      4-neighbour outside the mask), which is where it is searched.  Ties go to the first pair
      in the hull's vertex order (Andrew's monotone chain from the smallest (x, y)).  A
      one-pixel mask has a zero-length long axis at that pixel.
    - **Short axis**: the longest segment perpendicular (in mm) to the long axis that lies inside
      the mask's *centre region*: the points whose bilinear interpolation of the mask is 1, i.e.
      whose surrounding pixel centres all belong to the mask (for an axis-aligned rectangle of
      pixels, the rectangle spanned by its corner pixel centres).  This is the same pixel-centre
      convention as the long axis: on a disk of radius r px (centres within r) both measure
      about 2r.  Candidate lines cross the long axis every 0.5 px between its endpoints
      (``_LINE_STEP_PX``, in units of the finer pixel spacing) and are sampled every 0.1 px
      (``_SAMPLE_STEP_PX``); the segment joins the first and last sample of the longest run of
      inside samples, so it is at most 0.1 px shorter than the exact chord at each end.  Ties go
      to the line nearest the long axis' midpoint, then the lower line index.  A mask without a
      centre region (1 px wide) gets a zero-length short axis at the long axis' midpoint.

    Args:
        mask2d: (H, W) bool array, the cross-section.  Must contain at least one pixel.
        spacing_xy: (x, y) pixel spacing in mm/px.

    Returns:
        dict with ``long_axis`` (x1, y1, x2, y2) and ``short_axis`` (x1, y1, x2, y2) as floats in
        0-based pixels; ``long_px``, ``short_px`` (segment lengths in pixels, as DL_info.csv's
        ``Lesion_diameters_Pixel_``) and ``long_mm``, ``short_mm``.

    Raises:
        ValueError: the mask is not 2D or is empty, or the spacing is not positive.
    """
    mask = np.asarray(mask2d)
    if mask.ndim != 2:
        raise ValueError(f'recist_from_mask: expected a 2D (H, W) mask, got shape {mask.shape}')
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        raise ValueError('recist_from_mask: the mask is empty (no lesion pixel)')
    sx, sy = (float(s) for s in spacing_xy)
    if not (sx > 0 and sy > 0):
        raise ValueError(f'recist_from_mask: spacing_xy must be positive, got {spacing_xy!r}')
    scale = np.array([sx, sy])

    bx, by = _boundary_pixels(mask)
    hull = _convex_hull(np.stack([bx, by], axis=1))
    # Integer pixel differences first: the result does not depend on where the mask sits.
    diff = (hull[:, None, :] - hull[None, :, :]) * scale
    d2 = np.einsum('ijk,ijk->ij', diff, diff)
    i, j = np.unravel_index(int(np.argmax(np.triu(d2, 1))), d2.shape)
    p1 = hull[i].astype(np.float64)
    p2 = hull[j].astype(np.float64)
    long_axis = (float(p1[0]), float(p1[1]), float(p2[0]), float(p2[1]))
    long_mm = float(np.sqrt(d2[i, j]))
    long_px = float(np.hypot(*(p2 - p1)))

    if long_mm == 0.0:
        return dict(long_axis=long_axis, short_axis=long_axis, long_px=0.0, short_px=0.0,
                    long_mm=0.0, short_mm=0.0)

    # Work in mm in the long axis' frame: u along it from p1, v perpendicular.
    d = (p2 - p1) * scale / long_mm
    n = np.array([-d[1], d[0]])
    ys, xs = np.nonzero(mask)
    v_pix = ((np.stack([xs, ys], axis=1) - p1) * scale) @ n
    unit = min(sx, sy)
    u_lines = np.arange(int(np.floor(long_mm / (_LINE_STEP_PX * unit))) + 1) * (
        _LINE_STEP_PX * unit)
    v_step = _SAMPLE_STEP_PX * unit
    v_samples = np.arange(np.floor(v_pix.min() / v_step) - 1,
                          np.ceil(v_pix.max() / v_step) + 2) * v_step
    # Sample positions relative to p1 (an integer pixel), so that translating the mask by whole
    # pixels translates the result exactly.
    lx = (u_lines[:, None] * d[0] + v_samples[None, :] * n[0]) / sx
    ly = (u_lines[:, None] * d[1] + v_samples[None, :] * n[1]) / sy
    inside = _centre_region(mask, int(p1[0]), int(p1[1]), lx, ly)
    px = p1[0] + lx
    py = p1[1] + ly
    # Runs of inside samples along each line (rows): pad with False so every run has both ends.
    padded = np.zeros((inside.shape[0], inside.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = inside
    step = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(step == 1)
    _, run_stops = np.nonzero(step == -1)  # row-major order pairs each start with its stop
    if len(run_rows) == 0:  # no line reaches into the centre region (a 1-px-wide mask)
        c = np.argmin(np.abs(u_lines - long_mm / 2))
        mid = p1 + u_lines[c] * d / scale
        short_axis = (float(mid[0]), float(mid[1]), float(mid[0]), float(mid[1]))
        return dict(long_axis=long_axis, short_axis=short_axis, long_px=long_px, short_px=0.0,
                    long_mm=long_mm, short_mm=0.0)
    lengths = (run_stops - 1 - run_starts) * v_step
    mid_dist = np.abs(u_lines[run_rows] - long_mm / 2)
    # Longest first; then nearest the long axis' midpoint; then lowest line index.
    best = np.lexsort((run_rows, mid_dist, -np.round(lengths, 9)))[0]
    row, a_i, b_i = run_rows[best], run_starts[best], run_stops[best] - 1
    short_axis = (float(px[row, a_i]), float(py[row, a_i]), float(px[row, b_i]),
                  float(py[row, b_i]))
    return dict(long_axis=long_axis, short_axis=short_axis, long_px=long_px,
                short_px=float(np.hypot(short_axis[2] - short_axis[0],
                                        short_axis[3] - short_axis[1])),
                long_mm=long_mm, short_mm=float(lengths[best]))


def _centre_region(mask: np.ndarray, bx: int, by: int, lx: np.ndarray,
                   ly: np.ndarray) -> np.ndarray:
    """Whether points (bx + lx, by + ly) (0-based px) lie in the mask's centre region.

    A point is inside when every pixel centre with a non-zero bilinear weight at the point is in
    the mask (points outside the image are outside).
    """
    h, w = mask.shape
    fxl = np.floor(lx)
    fyl = np.floor(ly)
    fx = lx - fxl
    fy = ly - fyl
    x0 = fxl.astype(np.int64) + bx
    y0 = fyl.astype(np.int64) + by
    ok = (x0 >= 0) & (y0 >= 0) & (x0 <= w - 1) & (y0 <= h - 1)
    ok &= ((fx == 0) | (x0 + 1 <= w - 1)) & ((fy == 0) | (y0 + 1 <= h - 1))
    m = np.pad(mask, ((0, 1), (0, 1)), constant_values=False)
    xc = np.clip(x0, 0, w - 1)
    yc = np.clip(y0, 0, h - 1)
    ok &= m[yc, xc]
    ok &= (fx == 0) | m[yc, xc + 1]
    ok &= (fy == 0) | m[yc + 1, xc]
    ok &= (fx == 0) | (fy == 0) | m[yc + 1, xc + 1]
    return ok


def recist_box(recist8: Sequence[float], pad_px: float = 5.0,
               image_size: Optional[Sequence[int]] = None) -> list:
    """DeepLesion's box of a RECIST mark: the extent of its 4 endpoints padded by ``pad_px``.

    Args:
        recist8: long-axis x1, y1, x2, y2 then short-axis x1, y1, x2, y2 (px, any frame; the box is
            in the same frame).
        pad_px: padding on every side (DeepLesion: 5 px).
        image_size: (W, H) in px.  When given, the box is clipped to the pixel centres of a 0-based
            image, [0, W - 1] x [0, H - 1] (so ``recist8`` must then be 0-based).

    Returns:
        [x1, y1, x2, y2] floats.
    """
    pts = np.asarray(recist8, dtype=np.float64)
    if pts.shape != (8,) or not np.all(np.isfinite(pts)):
        raise ValueError(f'recist_box: expected 8 finite numbers, got {recist8!r}')
    xs, ys = pts[0::2], pts[1::2]
    box = [xs.min() - pad_px, ys.min() - pad_px, xs.max() + pad_px, ys.max() + pad_px]
    if image_size is not None:
        w, h = (int(s) for s in image_size)
        box = [min(max(box[0], 0.0), w - 1.0), min(max(box[1], 0.0), h - 1.0),
               min(max(box[2], 0.0), w - 1.0), min(max(box[3], 0.0), h - 1.0)]
    return [float(b) for b in box]
