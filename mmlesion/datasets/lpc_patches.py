"""Patches of 3D lesion proposals for the lesion proposal classifier (plain numpy).

The LPC (paper Sec. III-D, IV-E; docs/method.md#lpc, docs/proposals.md#patches) looks at a
proposal through axial, coronal and sagittal planes through its centre (multi-view and axial
LPC), or through the sub-volume around it (3D LPC).  Geometry, for a proposal whose tracklet has
boxes ``[x1, y1, x2, y2]`` on slices ``z_a..z_b``:

* **Centre**: the centre of the enclosing 3D box: ``cx = (min x1 + max x2) / 2``,
  ``cy = (min y1 + max y2) / 2`` (continuous px, 0-based corners), ``cz = (z_a + z_b) / 2``
  (slice index; slice ``k`` spans ``[k - 0.5, k + 0.5]``).
* **Extent**: the enclosing box padded by ``pad_px`` = 64 px each way in-plane (the paper), and
  by the same physical margin (``pad_px * pixel_mm`` mm) each way in z, where the box spans
  ``(z_b - z_a + 1) * slice_interval_mm`` mm.  Extents are measured in in-plane pixels
  (``pixel_mm`` = the x spacing; DeepLesion pixels are square).
* **Square views** *(ours, ``keep_aspect=True``)*: each view covers the larger of its two padded
  extents on both axes (the 3D cube the largest of the three), so resizing to a fixed square
  size keeps the aspect ratio; ``keep_aspect=False`` stretches each padded extent instead.
* **z resampling** *(ours)*: z is resampled to the in-plane mm/px, so coronal and sagittal patches
  have square pixels in mm.  This is done together with the resize to the fixed size, in one
  separable resampling of just the planes' support: linear interpolation when enlarging, area
  averaging (each output pixel the mean of the input cells it covers, like
  ``cv2.INTER_AREA``) when shrinking.  The plane through the centre blends the two slices
  (rows, columns) next to it linearly.
* **Outside the scan is air**: -1024 HU beyond the image and beyond half a slice past the first
  and last slice of the sub-volume (an output pixel that straddles the border is blended).  A
  slice missing inside the sub-volume is replaced by its nearest available neighbour.
* **Orientation**: axial rows = y, columns = x; coronal rows = z (increasing slice index
  downwards), columns = x; sagittal rows = z, columns = y; the cube is ``(z, y, x)``.
* **Intensity**: windowed like the LPG's input (:func:`mmlesion.datasets.slice_sampling.
  apply_window`: ``(-1024, 3071)`` HU -> ``(0, 255)`` by default; composite windows allowed).

Everything is cut from a decoded sub-volume ``{absolute z: H x W HU}`` (what
:meth:`mmlesion.datasets.VolumeReader.get_volume` returns), so all proposals of a volume come
from one decode of its PNGs.
"""
import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import slice_sampling as ss

__all__ = ['VIEWS', 'VIEW_AXES', 'AIR_HU', 'PAPER_PAD_PX', 'DEFAULT_UNKNOWN_INTERVAL_MM',
           'ProposalRegion', 'SliceStack', 'proposal_region', 'extract_views', 'extract_cube',
           'extract_volume_patches', 'patch_axes']

VIEWS = ('axial', 'coronal', 'sagittal')
# (row axis, column axis) of each view; the cube is (z, y, x)
VIEW_AXES = {'axial': ('y', 'x'), 'coronal': ('z', 'x'), 'sagittal': ('z', 'y')}


def patch_axes(mode: str, views: Sequence[str] = ()) -> tuple:
    """The axes of a patch's dimensions: per view its ``VIEW_AXES`` (``mode='views'``), or
    ``('z', 'y', 'x')`` for a cube."""
    return tuple(VIEW_AXES[v] for v in views) if mode == 'views' else ('z', 'y', 'x')

AIR_HU = -1024.0
PAPER_PAD_PX = 64  # paper Sec. IV-E: "padded with 64 pixels in each direction"
# slice interval assumed when DL_info.csv gives 0 or NaN *(ours: the LPG's channel spacing)*
DEFAULT_UNKNOWN_INTERVAL_MM = 2.0

Size2D = Union[int, Tuple[int, int]]
Size3D = Union[int, Tuple[int, int, int]]


@dataclass(frozen=True)
class ProposalRegion:
    """Centre and padded extent of a proposal (see the module docstring).

    Attributes:
        cx_px, cy_px: centre, continuous 0-based px.
        cz: centre, continuous absolute slice index.
        extent_px: ``{'x', 'y', 'z'}`` padded extents in in-plane pixels (z converted from mm).
        pixel_mm: in-plane spacing, mm/px.
        slice_interval_mm: slice spacing used, mm.
    """
    cx_px: float
    cy_px: float
    cz: float
    extent_px: Dict[str, float]
    pixel_mm: float
    slice_interval_mm: float

    def view_extent(self, view: str, keep_aspect: bool = True) -> Tuple[float, float]:
        """``(rows, columns)`` extent of a view in in-plane px."""
        r, c = VIEW_AXES[view]
        er, ec = self.extent_px[r], self.extent_px[c]
        return (max(er, ec), max(er, ec)) if keep_aspect else (er, ec)

    def cube_extent(self, keep_aspect: bool = True) -> Tuple[float, float, float]:
        """``(z, y, x)`` extent of the cube in in-plane px."""
        e = self.extent_px
        if keep_aspect:
            side = max(e.values())
            return side, side, side
        return e['z'], e['y'], e['x']


def _usable_interval(slice_interval_mm: Optional[float], unknown_interval_mm: float) -> float:
    if ss.interval_is_usable(slice_interval_mm):
        return float(slice_interval_mm)
    return float(unknown_interval_mm)


def proposal_region(z: Sequence[int], boxes: np.ndarray, pixel_mm: float,
                    slice_interval_mm: Optional[float], pad_px: float = PAPER_PAD_PX,
                    unknown_interval_mm: float = DEFAULT_UNKNOWN_INTERVAL_MM
                    ) -> ProposalRegion:
    """Centre and padded extent of a tracklet.

    Args:
        z: ``(n,)`` absolute slice indices of the tracklet.
        boxes: ``(n, 4+)`` ``[x1, y1, x2, y2, ...]`` 0-based continuous corners (px).
        pixel_mm: in-plane spacing (mm/px).
        slice_interval_mm: slice spacing (mm); 0, None or NaN -> ``unknown_interval_mm``.
        pad_px: margin each way (px in-plane; the same mm in z).

    Raises:
        ValueError: no slice, or a non-positive spacing.
    """
    z = np.asarray(z, dtype=np.float64).ravel()
    b = np.asarray(boxes, dtype=np.float64).reshape(z.size, -1)
    if z.size == 0:
        raise ValueError('a proposal needs at least one slice')
    if not (pixel_mm and math.isfinite(pixel_mm) and pixel_mm > 0):
        raise ValueError(f'pixel spacing must be a positive number of mm, got {pixel_mm!r}')
    dz = _usable_interval(slice_interval_mm, unknown_interval_mm)
    x1, y1, x2, y2 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    za, zb = z.min(), z.max()
    depth_px = (zb - za + 1.0) * dz / pixel_mm
    pad = float(pad_px)
    return ProposalRegion(
        cx_px=float(x1 + x2) / 2.0, cy_px=float(y1 + y2) / 2.0, cz=float(za + zb) / 2.0,
        extent_px=dict(x=float(x2 - x1) + 2 * pad, y=float(y2 - y1) + 2 * pad,
                       z=float(depth_px) + 2 * pad),
        pixel_mm=float(pixel_mm), slice_interval_mm=dz)


class SliceStack:
    """A decoded sub-volume ``{absolute z: H x W HU}`` seen as a dense ``(Z, H, W)`` grid of
    slices ``first..last`` without copying it; a missing slice inside the range reads as its
    nearest available neighbour (the lower one on a tie).

    Raises:
        ValueError: no slice, or slices of different sizes.
    """

    def __init__(self, slices: Mapping[int, np.ndarray]):
        if isinstance(slices, SliceStack):
            slices = slices.slices
        zs = np.array(sorted(int(k) for k in slices), dtype=np.int64)
        if zs.size == 0:
            raise ValueError('the volume has no slice')
        self.slices = slices
        first = slices[int(zs[0])]
        self.shape_hw = tuple(int(v) for v in np.shape(first)[:2])
        for k in zs:
            if tuple(np.shape(slices[int(k)])[:2]) != self.shape_hw:
                raise ValueError(f'slice {int(k)} is {np.shape(slices[int(k)])} but slice '
                                 f'{int(zs[0])} is {self.shape_hw}')
        self.first, self.last = int(zs[0]), int(zs[-1])
        dense = np.arange(self.first, self.last + 1)
        pos = np.searchsorted(zs, dense)
        lower = zs[np.maximum(pos - 1, 0)]
        upper = zs[np.minimum(pos, zs.size - 1)]
        self._source = np.where(upper - dense < dense - lower, upper, lower)
        self._source[np.isin(dense, zs)] = dense[np.isin(dense, zs)]

    @property
    def num_slices(self) -> int:
        return self.last - self.first + 1

    def block(self, zr: Tuple[int, int], yr: Tuple[int, int], xr: Tuple[int, int]) -> np.ndarray:
        """``(nz, ny, nx)`` float32 copy of dense slices ``zr`` (0-based from ``first``), rows
        ``yr``, columns ``xr`` (half-open ranges inside the grid)."""
        out = np.empty((zr[1] - zr[0], yr[1] - yr[0], xr[1] - xr[0]), dtype=np.float32)
        for i, k in enumerate(range(zr[0], zr[1])):
            out[i] = self.slices[int(self._source[k])][yr[0]:yr[1], xr[0]:xr[1]]
        return out


def _weights(centre: float, extent: float, n_out: int, n_cells: int):
    """Resampling weights of ``n_out`` output pixels spanning ``[centre - extent/2,
    centre + extent/2]`` over input cells ``[i, i + 1]``, ``i = 0..n_cells-1`` (cell
    coordinates).  Output pixel ``j`` averages the input over a footprint of width
    ``max(step, 1)`` around its centre (area when shrinking, linear when enlarging); the part
    of the footprint outside the cells is air.

    Returns:
        ``(i0, w)``: first cell of the support and ``(n_out, n_support)`` weights.
    """
    step = extent / n_out
    p = centre - extent / 2.0 + (np.arange(n_out) + 0.5) * step
    f = max(step, 1.0)
    lo, hi = p - f / 2.0, p + f / 2.0
    i0 = max(0, int(math.floor(lo.min())))
    i1 = min(n_cells, int(math.ceil(hi.max())))
    if i1 <= i0:
        return 0, np.zeros((n_out, 0))
    cells = np.arange(i0, i1, dtype=np.float64)
    w = np.minimum(hi[:, None], cells + 1.0) - np.maximum(lo[:, None], cells)
    return i0, np.clip(w, 0.0, None) / f


def _resample(stack: SliceStack, region: ProposalRegion, extent_zyx: Sequence[float],
              out_zyx: Sequence[int]) -> np.ndarray:
    """HU on an axis-aligned grid of ``out_zyx`` samples spanning ``extent_zyx`` in-plane px
    around the region's centre (an extent of 0 with 1 sample: the plane through the centre)."""
    h, w = stack.shape_hw
    # cell coordinates: x -> x (px), y -> y (px), slice z -> z - first + 0.5 (slice k covers
    # cell [k - first, k - first + 1]); z extents convert from px to slices
    z_per_px = region.pixel_mm / region.slice_interval_mm
    axes = [(region.cz - stack.first + 0.5, extent_zyx[0] * z_per_px, out_zyx[0],
             stack.num_slices),
            (region.cy_px, extent_zyx[1], out_zyx[1], h),
            (region.cx_px, extent_zyx[2], out_zyx[2], w)]
    starts, weights = [], []
    for centre, extent, n_out, n_cells in axes:
        i0, wt = _weights(centre, extent, int(n_out), n_cells)
        starts.append(i0)
        weights.append(wt)
    inside = np.ones(tuple(int(n) for n in out_zyx))
    for ax, wt in enumerate(weights):
        shape = [1, 1, 1]
        shape[ax] = -1
        inside = inside * wt.sum(axis=1).reshape(shape)
    if any(wt.shape[1] == 0 for wt in weights):
        return np.full(inside.shape, AIR_HU, dtype=np.float32)
    out = stack.block(*[(s, s + wt.shape[1]) for s, wt in zip(starts, weights)])
    w32 = [wt.astype(np.float32) for wt in weights]
    # contract the axes that shrink the most first (the fixed axis of a plane goes first)
    for ax in sorted(range(3), key=lambda a: weights[a].shape[0] / weights[a].shape[1]):
        if ax == 0:
            out = (w32[0] @ out.reshape(out.shape[0], -1)).reshape(-1, *out.shape[1:])
        elif ax == 1:
            out = np.matmul(w32[1], out)
        else:
            out = out @ w32[2].T
    out += ((1.0 - inside) * AIR_HU).astype(np.float32)
    return out


def _size2d(size: Size2D) -> Tuple[int, int]:
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f'view size must be a positive int or (H, W), got {size!r}')
    return int(hw[0]), int(hw[1])


def _size3d(size: Size3D) -> Tuple[int, int, int]:
    dhw = (size, ) * 3 if isinstance(size, (int, np.integer)) else tuple(size)
    if len(dhw) != 3 or min(dhw) < 1:
        raise ValueError(f'cube size must be a positive int or (D, H, W), got {size!r}')
    return int(dhw[0]), int(dhw[1]), int(dhw[2])


def _window(hu: np.ndarray, window_hu, out_range) -> np.ndarray:
    return hu if window_hu is None else ss.apply_window(hu, window_hu, out_range)


def extract_views(volume: Union[SliceStack, Mapping[int, np.ndarray]], region: ProposalRegion,
                  views: Sequence[str] = VIEWS, size: Size2D = 224, keep_aspect: bool = True,
                  window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                  out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE) -> np.ndarray:
    """Planes through a proposal's centre, resized to ``size``.

    Args:
        volume: the decoded sub-volume (``{absolute z: H x W HU}`` or a :class:`SliceStack`).
        region: :func:`proposal_region` of the proposal.
        views: any of ``'axial'``, ``'coronal'``, ``'sagittal'``, in the output order.
        size: output ``H x W`` px of every view.
        keep_aspect: square views (see the module docstring).
        window_hu: HU window (``None``: return HU).
        out_range: window output range.

    Returns:
        ``(len(views), H, W)`` float32.
    """
    stack = volume if isinstance(volume, SliceStack) else SliceStack(volume)
    oh, ow = _size2d(size)
    out = np.empty((len(views), oh, ow), dtype=np.float32)
    for i, view in enumerate(views):
        if view not in VIEW_AXES:
            raise ValueError(f'unknown view {view!r}; views are {VIEWS}')
        er, ec = region.view_extent(view, keep_aspect)
        row_ax, col_ax = VIEW_AXES[view]
        extent = dict(z=0.0, y=0.0, x=0.0)
        n = dict(z=1, y=1, x=1)
        extent[row_ax], n[row_ax] = er, oh
        extent[col_ax], n[col_ax] = ec, ow
        hu = _resample(stack, region, (extent['z'], extent['y'], extent['x']),
                       (n['z'], n['y'], n['x']))
        out[i] = hu.reshape(oh, ow)
    return _window(out, window_hu, out_range)


def extract_cube(volume: Union[SliceStack, Mapping[int, np.ndarray]], region: ProposalRegion,
                 size: Size3D = 64, keep_aspect: bool = True,
                 window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                 out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE) -> np.ndarray:
    """The padded sub-volume around a proposal, resampled to a ``(D, H, W)`` grid (z, y, x).

    Arguments as :func:`extract_views`; ``size`` is an int (a cube) or ``(D, H, W)``.

    Returns:
        ``(D, H, W)`` float32.
    """
    stack = volume if isinstance(volume, SliceStack) else SliceStack(volume)
    hu = _resample(stack, region, region.cube_extent(keep_aspect), _size3d(size))
    return _window(hu, window_hu, out_range)


def extract_volume_patches(volume: Mapping[int, np.ndarray], tracklets: Sequence,
                           pixel_mm: float, slice_interval_mm: Optional[float], *,
                           mode: str = 'views', views: Sequence[str] = VIEWS,
                           size: Union[Size2D, Size3D] = 224, pad_px: float = PAPER_PAD_PX,
                           keep_aspect: bool = True,
                           window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                           out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
                           unknown_interval_mm: float = DEFAULT_UNKNOWN_INTERVAL_MM) -> list:
    """Patches of every proposal of one sub-volume from its one decode.

    Args:
        volume: ``{absolute z: H x W HU}`` (e.g. ``VolumeReader.get_volume``).
        tracklets: the volume's proposals (objects with ``z`` and ``boxes``).
        pixel_mm, slice_interval_mm: spacing (mm).
        mode: ``'views'`` (:func:`extract_views`) or ``'cube'`` (:func:`extract_cube`).
        Other arguments as :func:`proposal_region` and :func:`extract_views`.

    Returns:
        one array per tracklet: ``(V, H, W)`` or ``(D, H, W)`` float32.
    """
    if mode not in ('views', 'cube'):
        raise ValueError(f"mode must be 'views' or 'cube', got {mode!r}")
    stack = SliceStack(volume)
    out = []
    for t in tracklets:
        region = proposal_region(t.z, t.boxes, pixel_mm, slice_interval_mm, pad_px,
                                 unknown_interval_mm)
        if mode == 'views':
            out.append(extract_views(stack, region, views, size, keep_aspect, window_hu,
                                     out_range))
        else:
            out.append(extract_cube(stack, region, size, keep_aspect, window_hu, out_range))
    return out
