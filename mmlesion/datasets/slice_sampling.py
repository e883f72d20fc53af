"""Which real CT slices make each channel of a 2.5D (multi-slice) input, and HU windowing.

Pure numpy; no file access.  The loading transforms and :class:`~mmlesion.datasets.volume_reader.
VolumeReader` are thin adapters over these functions.

Conventions
-----------
* Slice indices are DeepLesion's **absolute** indices (as in file names and ``Slice_range``).
  A slice *offset* is a float distance from the key slice in units of real slices
  (positive = larger slice index).
* Values are HU (decoded from DeepLesion's 16-bit PNGs by :mod:`~mmlesion.datasets.png_codec`).
* Channel layout of an ``N``-slice input (``N`` odd): channel ``c`` samples the volume at
  ``(c - (N - 1) / 2) * target_interval_mm`` from the key slice, so channels are ordered by
  increasing slice index (most superior first, most inferior last, as DeepLesion numbers slices)
  and the key slice is channel ``N // 2``.  ``N = 3``: ``[key - 2 mm, key, key + 2 mm]``.
  ``N = 9``: nine slices 2 mm apart, read by MULAN-style backbones as 3 groups of 3 consecutive
  channels ``[0:3], [3:6], [6:9]``; the central group (channels 3..5) holds the key slice at
  channel 4 (see :func:`channel_groups`).
* Resampling to ``target_interval_mm`` (2 mm, as in 3DCE/MULAN) interpolates linearly between the
  two real slices nearest to each sampling position.  A real slice that is unavailable (outside the
  sub-volume's slice range, or absent on disk) is replaced by the nearest available slice toward the
  key slice, as the NIH CADLab loaders do when they step back toward the key.  A slice interval of
  0, ``None`` or NaN (DeepLesion has such rows) repeats the key slice in every channel.
"""
import math
from typing import Callable, Container, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

DEFAULT_WINDOW_HU = (-1024.0, 3071.0)  # 3DCE / MULAN: the full 12-bit CT range
DEFAULT_OUT_RANGE = (0.0, 255.0)
TARGET_INTERVAL_MM = 2.0

# Sampling positions within this many slices of an integer are snapped to it, so that e.g.
# 2 mm / 0.4 mm = 5.000000000000001 reads slice 5 alone instead of 5 and 6 with weight 1e-15.
_SNAP_TOL = 1e-6


def apply_hu_window(hu: np.ndarray,
                    low: float = DEFAULT_WINDOW_HU[0],
                    high: float = DEFAULT_WINDOW_HU[1],
                    out: Tuple[float, float] = DEFAULT_OUT_RANGE,
                    *,
                    dst: Optional[np.ndarray] = None) -> np.ndarray:
    """Clip HU to ``[low, high]`` and map linearly onto ``out`` (float32), like MONAI's
    ``ScaleIntensityRange(a_min=low, a_max=high, b_min=out[0], b_max=out[1], clip=True)``.

    ``low -> out[0]``, ``high -> out[1]``.  A zero-width window (``low == high``) does not divide by
    zero: every value maps to ``out[0]`` (after clipping all values equal ``low``).

    Args:
        hu: array in HU, any shape.
        low, high: window bounds in HU, ``low <= high``.
        out: output range ``(out_low, out_high)``.
        dst: float32 array of ``hu``'s shape to write the result into (``hu`` itself when the
            caller no longer needs it); None: a new array.  Same values either way: the four
            float32 steps ``clip, - low, * scale, + out_low`` run in place.

    Returns:
        float32 array of the same shape.
    """
    low, high = float(low), float(high)
    out_low, out_high = float(out[0]), float(out[1])
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise ValueError(f'HU window must be finite with low <= high, got ({low}, {high})')
    hu = np.asarray(hu, dtype=np.float32)
    width = high - low
    if width == 0:
        if dst is None:
            return np.full(hu.shape, out_low, dtype=np.float32)
        dst[...] = np.float32(out_low)
        return dst
    scale = np.float32((out_high - out_low) / width)
    mapped = np.clip(hu, low, high, out=dst)
    mapped -= np.float32(low)
    mapped *= scale
    mapped += np.float32(out_low)
    return mapped


WindowSpec = Union[Tuple[float, float], Sequence[Tuple[float, float]]]


def normalize_window(window: WindowSpec, where: str = 'window_hu'
                     ) -> Union[Tuple[float, float], Tuple[Tuple[float, float], ...]]:
    """Validate a window: ``(low, high)``, or a composite ``[(low, high), ...]`` of several.

    Returns ``(low, high)`` as floats for one window (also for a one-element list) and a tuple of
    such pairs for a composite.

    Raises:
        ValueError: not a pair or a non-empty sequence of pairs with finite ``low <= high``.
    """
    def pair(w):
        try:
            low, high = (float(v) for v in w)
        except (TypeError, ValueError):
            raise ValueError(f'{where} must be (low, high) HU or a list of such windows, '
                             f'got {window!r}') from None
        if not (math.isfinite(low) and math.isfinite(high)) or high < low:
            raise ValueError(f'{where}: every window needs finite low <= high HU, got {window!r}')
        return low, high

    items = list(window) if isinstance(window, (list, tuple)) else None
    if items and all(isinstance(w, (list, tuple)) for w in items):
        pairs = tuple(pair(w) for w in items)
        return pairs[0] if len(pairs) == 1 else pairs
    return pair(window)


def apply_window(hu: np.ndarray, window: WindowSpec,
                 out: Tuple[float, float] = DEFAULT_OUT_RANGE, *,
                 overwrite: bool = False) -> np.ndarray:
    """Window HU onto ``out``: one ``(low, high)`` window (:func:`apply_hu_window`), or a composite.

    A composite window ``[(l1, h1), (l2, h2), ...]`` is the mean of the windows' images, each
    mapped onto ``[0, 1]``, then scaled onto ``out``: a monotone piecewise-linear curve whose slope
    is the sum of the windows covering a HU value.  One channel then carries the lung, soft-tissue
    and bone contrast that radiologists read in separate windows (e.g. full range, lung
    ``(-1000, 200)`` and soft tissue ``(-160, 240)``: a 45 HU liver lesion spans ~5x more output
    levels than with the full range alone).

    Args:
        hu: array in HU, any shape.
        window: ``(low, high)`` or a sequence of such windows.
        out: output range ``(out_low, out_high)``.
        overwrite: ``hu`` is a float32 array the caller no longer needs: the result may be
            written into it (same values; fewer large temporaries).

    Returns:
        float32 array of the same shape.
    """
    window = normalize_window(window)
    hu = np.asarray(hu)
    own = overwrite and hu.dtype == np.float32 and hu.flags.writeable
    if not isinstance(window[0], tuple):
        return apply_hu_window(hu, window[0], window[1], out, dst=hu if own else None)
    # sum of the parts in window order, then * scale + out[0]: in place, the same float32 steps
    acc = apply_hu_window(hu, window[0][0], window[0][1], (0.0, 1.0))
    part = None
    for i, (low, high) in enumerate(window[1:]):
        last = i == len(window) - 2
        part = apply_hu_window(hu, low, high, (0.0, 1.0), dst=hu if own and last else part)
        acc += part
    acc *= np.float32((float(out[1]) - float(out[0])) / len(window))
    acc += np.float32(out[0])
    return acc


def window_to_hu(value: np.ndarray, window: WindowSpec,
                 out: Tuple[float, float] = DEFAULT_OUT_RANGE) -> np.ndarray:
    """Invert :func:`apply_window` where it is invertible (inside the windows' span).

    Values at the ends map to the span's ends (clipped HU is lost); on a flat stretch between
    disjoint windows the stretch's lowest HU is returned.
    """
    window = normalize_window(window)
    pairs = (window,) if not isinstance(window[0], tuple) else window
    knots = np.unique(np.array([v for w in pairs for v in w], dtype=np.float64))
    levels = apply_window(knots.astype(np.float32), window, out).astype(np.float64)
    keep = np.concatenate([[True], np.diff(levels) > 0])  # first HU of each flat stretch
    value = np.asarray(value, dtype=np.float64)
    if keep.sum() < 2:  # zero-width window: everything maps to its single HU
        return np.full(value.shape, knots[0], dtype=np.float32)
    return np.interp(value, levels[keep], knots[keep]).astype(np.float32)


def interval_is_usable(slice_interval_mm: Optional[float]) -> bool:
    """False for 0, ``None`` or NaN (repeat the key slice); True for a positive finite interval.

    Raises:
        ValueError: a negative or infinite interval (a corrupt row, not a documented quirk).
    """
    if slice_interval_mm is None:
        return False
    value = float(slice_interval_mm)
    if math.isnan(value) or value == 0:
        return False
    if value < 0 or math.isinf(value):
        raise ValueError(f'slice interval must be a positive number of mm, 0, None or NaN; '
                         f'got {slice_interval_mm!r}')
    return True


def _check_num_slices(num_slices: int) -> int:
    if int(num_slices) != num_slices or num_slices < 1 or num_slices % 2 == 0:
        raise ValueError(f'num_slices must be a positive odd integer (the key slice is the centre '
                         f'channel), got {num_slices!r}')
    return int(num_slices)


def sample_positions(slice_interval_mm: Optional[float],
                     num_slices: int,
                     target_interval_mm: float = TARGET_INTERVAL_MM) -> np.ndarray:
    """Offsets (in real slices, relative to the key slice) of the ``num_slices`` input channels.

    Channel ``c`` is ``target_interval_mm`` * ``(c - (num_slices - 1) / 2)`` mm from the key slice,
    i.e. ``(c - (num_slices - 1) / 2) * target_interval_mm / slice_interval_mm`` real slices.
    Example: 5 mm slices, 3 channels -> ``[-0.4, 0, 0.4]``; 0.625 mm -> ``[-3.2, 0, 3.2]``.
    An unusable interval (0, ``None``, NaN) gives all zeros: the key slice in every channel.

    Returns:
        float64 array of shape ``(num_slices,)``, increasing (channels ordered by slice index).
    """
    num_slices = _check_num_slices(num_slices)
    if not (float(target_interval_mm) > 0 and math.isfinite(float(target_interval_mm))):
        raise ValueError(f'target_interval_mm must be positive, got {target_interval_mm!r}')
    if not interval_is_usable(slice_interval_mm):
        return np.zeros(num_slices, dtype=np.float64)
    steps = np.arange(num_slices, dtype=np.float64) - (num_slices - 1) / 2
    offsets = steps * (float(target_interval_mm) / float(slice_interval_mm))
    nearest = np.round(offsets)
    return np.where(np.abs(offsets - nearest) < _SNAP_TOL, nearest, offsets)


class InterpolationPlan(NamedTuple):
    """How each input channel is made from real slices.

    ``channel c = weights[c, 0] * slice[indices[c, 0]] + weights[c, 1] * slice[indices[c, 1]]``.
    Column 0 is the real slice nearer to the key (or the only one), column 1 the farther one;
    ``weights`` rows sum to 1 and a weight of 0 means the slice is not read.

    Attributes:
        indices: int64 ``(C, 2)`` absolute slice indices.
        weights: float64 ``(C, 2)``.
    """
    indices: np.ndarray
    weights: np.ndarray

    def needed_slices(self) -> List[int]:
        """Sorted absolute indices of the slices with a non-zero weight."""
        return sorted({int(i) for i, w in zip(self.indices.ravel(), self.weights.ravel()) if w > 0})


def _availability(slice_range: Sequence[int],
                  available_indices: Optional[Container[int]]) -> Callable[[int], bool]:
    first, last = int(slice_range[0]), int(slice_range[1])

    def is_available(index: int) -> bool:
        if not first <= index <= last:
            return False
        return available_indices is None or index in available_indices

    return is_available


def _toward_key(target: int, key_index: int, is_available: Callable[[int], bool]) -> int:
    step = -1 if target > key_index else 1
    index = target
    while index != key_index and not is_available(index):
        index += step
    return index


def interpolation_plan(key_index: int,
                       slice_range: Sequence[int],
                       available_indices: Optional[Container[int]],
                       offsets: Sequence[float]) -> InterpolationPlan:
    """Real slices and linear weights that make each input channel.

    For the offset ``o`` of a channel, with ``m = |o|``, ``n = floor(m)``, ``f = ceil(m)`` and
    ``s = sign(o)``, the channel is
    ``(1 - (m - n)) * slice[key + s*n] + (m - n) * slice[key + s*f]``
    (the CADLab rule ``a * far + b * near`` with ``a = m - n``, ``b = f - m``).  Each of the two
    slices, if unavailable, is replaced by the nearest available slice between it and the key
    (stepping one slice at a time toward the key; the key itself is always used).  When both end on
    the same slice the channel is that slice with weight 1.  Example: key 20, offset -0.4 ->
    indices ``(20, 19)``, weights ``(0.6, 0.4)``.

    Args:
        key_index: absolute index of the key slice; must be inside ``slice_range`` and available.
        slice_range: ``(first, last)`` absolute, inclusive, of the sub-volume.
        available_indices: absolute indices present on disk (anything supporting ``in``: a set, a
            ``range``, or an object that checks files lazily); ``None`` means every slice of
            ``slice_range``.  Slices outside ``slice_range`` are never used.
        offsets: channel offsets in real slices relative to the key, from :func:`sample_positions`.

    Returns:
        :class:`InterpolationPlan` with ``C = len(offsets)`` rows.
    """
    key_index = int(key_index)
    if len(slice_range) != 2 or int(slice_range[0]) > int(slice_range[1]):
        raise ValueError(f'slice_range must be (first, last) with first <= last, '
                         f'got {slice_range!r}')
    is_available = _availability(slice_range, available_indices)
    if not is_available(key_index):
        raise ValueError(f'key slice {key_index} is outside slice_range {list(slice_range)} or not '
                         'among the available slices')
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(offsets)):
        raise ValueError(f'slice offsets must be finite, got {offsets.tolist()}')
    indices = np.empty((len(offsets), 2), dtype=np.int64)
    weights = np.zeros((len(offsets), 2), dtype=np.float64)
    for c, offset in enumerate(offsets):
        magnitude = abs(float(offset))
        if abs(magnitude - round(magnitude)) < _SNAP_TOL:
            magnitude = float(round(magnitude))
        sign = 1 if offset >= 0 else -1
        near_step, far_step = math.floor(magnitude), math.ceil(magnitude)
        far_weight = magnitude - near_step
        near = _toward_key(key_index + sign * near_step, key_index, is_available)
        far = _toward_key(key_index + sign * far_step, key_index, is_available)
        if near == far or far_weight == 0:
            indices[c] = (near, near)
            weights[c] = (1.0, 0.0)
        else:
            indices[c] = (near, far)
            weights[c] = (1.0 - far_weight, far_weight)
    return InterpolationPlan(indices, weights)


def blend_slices(plan: InterpolationPlan,
                 slices: Union[Mapping[int, np.ndarray], Callable[[int], np.ndarray]]
                 ) -> np.ndarray:
    """Build the ``H x W x C`` float32 stack that ``plan`` describes.

    Args:
        plan: from :func:`interpolation_plan`.
        slices: ``{absolute index: H x W array}`` (HU) or a function ``index -> H x W array``;
            only :meth:`InterpolationPlan.needed_slices` are requested, each once.

    Returns:
        float32 ``H x W x C`` (same units as the slices, e.g. HU).
    """
    getter = slices.__getitem__ if isinstance(slices, Mapping) else slices
    needed = {index: np.asarray(getter(index)) for index in plan.needed_slices()}
    shapes = {index: image.shape for index, image in needed.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f'slices to blend must be 2D arrays of one shape, got {shapes}')
    height, width = next(iter(shapes.values()))
    out = np.empty((height, width, len(plan.indices)), dtype=np.float32)
    for c, ((i0, i1), (w0, w1)) in enumerate(zip(plan.indices, plan.weights)):
        if w1 == 0:
            out[..., c] = needed[int(i0)]
        else:
            out[..., c] = np.float32(w0) * needed[int(i0)] + np.float32(w1) * needed[int(i1)]
    return out


def channel_groups(num_slices: int, group_size: int = 3) -> List[Tuple[int, ...]]:
    """Channel indices of the consecutive groups a multi-slice input is split into (MULAN).

    ``channel_groups(9) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]``; the key slice (channel
    ``num_slices // 2``) lies in the central group.
    """
    num_slices = _check_num_slices(num_slices)
    if group_size < 1 or num_slices % group_size != 0:
        raise ValueError(f'{num_slices} slices cannot be split into groups of {group_size}')
    return [tuple(range(g, g + group_size)) for g in range(0, num_slices, group_size)]
