"""Read DeepLesion sub-volumes from 16-bit PNG slices, decoding each PNG once.

Volume-wise inference and the harvest scan visit every slice of a sub-volume and need a 3- or
9-slice window around each; reading the 3 or 9 neighbour PNGs per window would decode every file
up to 9 times.  :class:`VolumeReader` decodes a sub-volume once into HU slices, keeps the last few
sub-volumes in an LRU cache, and builds all windows from memory.

Files: ``<image_root>/<series>/<KKK>.png`` (``KKK`` = absolute slice index, 3 digits), 16-bit,
``HU = raw - 32768`` (:mod:`.png_codec`).  Slice indices are absolute; ``slice_range`` is
``(first, last)`` inclusive.
"""
from collections import OrderedDict
from typing import Callable, Container, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine import fileio

from . import slice_sampling as ss
from .png_codec import raw_to_hu, read_uint16_png


class _LazyExists:
    """``index in self`` checks the slice file once and remembers the answer."""

    def __init__(self, reader: 'VolumeReader', series: str):
        self._reader = reader
        self._series = series
        self._known: Dict[int, bool] = {}

    def __contains__(self, index: int) -> bool:
        if index not in self._known:
            path = self._reader.slice_path(self._series, index)
            self._known[index] = fileio.exists(path, backend_args=self._reader.backend_args)
        return self._known[index]


class VolumeReader:
    """Decoded DeepLesion sub-volumes with an LRU cache, and multi-slice windows built from them.

    Args:
        image_root: folder holding the series folders (DeepLesion's ``Images_png``).  ``None``:
            the ``series`` argument of every method is the series folder path itself.
        max_volumes: how many decoded sub-volumes to keep (least recently used is evicted).  A
            512 x 512 slice takes 1 MiB as float32 HU, so a 60-slice sub-volume takes ~60 MiB.
            0 keeps nothing: :meth:`window` then decodes only the slices it needs, per call.
        backend_args: mmengine.fileio backend arguments (``None``: local files).
        strict: a slice that cannot be decoded, has the wrong size, or is absent although not
            listed as missing raises (True, for training: such files are found before it
            starts by ``tools/convert_deeplesion.py --check-images``).  False (long scans):
            the slice is treated as missing -- windows around it take the nearest slices toward
            their key, it gets no window of its own -- and recorded in :attr:`bad_slices`.

    Attributes:
        num_decoded: PNG files decoded so far (a counter for tests and profiling).
        bad_slices: ``[(path, reason), ...]`` of the slices skipped with ``strict=False``.
    """

    def __init__(self,
                 image_root: Optional[str] = None,
                 max_volumes: int = 2,
                 backend_args: Optional[dict] = None,
                 strict: bool = True):
        if int(max_volumes) != max_volumes or max_volumes < 0:
            raise ValueError(f'max_volumes must be a non-negative integer, got {max_volumes!r}')
        self.image_root = None if image_root is None else str(image_root)
        self.max_volumes = int(max_volumes)
        self.backend_args = backend_args
        self.strict = bool(strict)
        self.num_decoded = 0
        self.bad_slices: List[Tuple[str, str]] = []
        self._cache: 'OrderedDict[Tuple[str, int, int], Dict[int, np.ndarray]]' = OrderedDict()

    # ------------------------------------------------------------------ paths and single slices
    def series_dir(self, series: str) -> str:
        if self.image_root is None:
            return str(series)
        return fileio.join_path(self.image_root, str(series), backend_args=self.backend_args)

    def slice_path(self, series: str, slice_index: int) -> str:
        """``<image_root>/<series>/<KKK>.png`` for an absolute slice index."""
        return fileio.join_path(
            self.series_dir(series), f'{int(slice_index):03d}.png', backend_args=self.backend_args)

    def read_slice(self, series: str, slice_index: int) -> np.ndarray:
        """Decode one slice (not cached) -> HU float32 ``H x W``; counts in :attr:`num_decoded`."""
        raw = read_uint16_png(self.slice_path(series, slice_index), self.backend_args)
        self.num_decoded += 1
        return raw_to_hu(raw)

    # ------------------------------------------------------------------ volumes
    def available_slices(self,
                         series: str,
                         slice_range: Sequence[int],
                         missing_slices: Optional[Iterable[int]] = None) -> List[int]:
        """Absolute indices of ``slice_range`` that have a PNG.

        With ``missing_slices`` (the converter's scan, ``volumes[].missing_slices``) no file is
        touched; with ``None`` every file of the range is checked for existence.
        """
        first, last = _check_range(slice_range)
        if missing_slices is not None:
            missing = {int(i) for i in missing_slices}
            return [i for i in range(first, last + 1) if i not in missing]
        exists = _LazyExists(self, series)
        return [i for i in range(first, last + 1) if i in exists]

    def get_volume(self,
                   series: str,
                   slice_range: Sequence[int],
                   missing_slices: Optional[Iterable[int]] = None) -> Dict[int, np.ndarray]:
        """All available slices of a sub-volume: ``{absolute index: HU float32 H x W}``.

        Served from the cache when present (each PNG is decoded once per sub-volume while it stays
        cached).  The cached arrays are read-only: copy before modifying.  With ``strict=False``
        unreadable slices, and slices whose size differs from the most common one, are left out
        (:attr:`bad_slices`).

        Raises:
            FileNotFoundError: no (readable) slice of the range exists; with ``strict``, a slice
                not listed in ``missing_slices`` is absent.
            ValueError: with ``strict``, a slice is not a 16-bit PNG, or slices differ in size.
        """
        first, last = _check_range(slice_range)
        key = (self.series_dir(series), first, last)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        indices = self.available_slices(series, (first, last), missing_slices)
        if not indices:
            raise FileNotFoundError(
                f'no slice of {first}-{last} found in {self.series_dir(series)}')
        volume: Dict[int, np.ndarray] = {}
        for index in indices:
            try:
                image = self.read_slice(series, index)
            except (ValueError, FileNotFoundError) as e:
                if self.strict:
                    raise
                self.bad_slices.append((self.slice_path(series, index), str(e)))
                continue
            if self.strict and volume:
                shape = next(iter(volume.values())).shape
                if image.shape != shape:
                    raise ValueError(f'{self.slice_path(series, index)} is {image.shape[1]}x'
                                     f'{image.shape[0]} px but slice {indices[0]} of the same '
                                     f'sub-volume is {shape[1]}x{shape[0]} px')
            image.flags.writeable = False
            volume[index] = image
        if not self.strict:
            volume = self._drop_odd_sizes(series, volume)
        if not volume:
            raise FileNotFoundError(
                f'no readable slice of {first}-{last} in {self.series_dir(series)}')
        if self.max_volumes > 0:
            self._cache[key] = volume
            while len(self._cache) > self.max_volumes:
                self._cache.popitem(last=False)
        return volume

    def _drop_odd_sizes(self, series: str, volume: Dict[int, np.ndarray]) -> Dict[int, np.ndarray]:
        """Keep the slices of the most common size (ties: the first slice's size)."""
        shapes = [im.shape for im in volume.values()]
        if len(set(shapes)) <= 1:
            return volume
        counts = {sh: shapes.count(sh) for sh in shapes}
        common = max(counts, key=lambda sh: (counts[sh], -shapes.index(sh)))
        kept = {}
        for index, image in volume.items():
            if image.shape == common:
                kept[index] = image
            else:
                self.bad_slices.append((
                    self.slice_path(series, index),
                    f'{image.shape[1]}x{image.shape[0]} px, the other slices of the sub-volume '
                    f'are {common[1]}x{common[0]} px'))
        return kept

    def clear(self) -> None:
        """Drop every cached sub-volume."""
        self._cache.clear()

    @property
    def cached_volumes(self) -> List[Tuple[str, int, int]]:
        """``(series dir, first, last)`` of the cached sub-volumes, least recently used first."""
        return list(self._cache)

    # ------------------------------------------------------------------ windows
    def window(self,
               series: str,
               slice_range: Sequence[int],
               key_index: int,
               slice_interval_mm: Optional[float],
               num_slices: int = 9,
               window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
               out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
               missing_slices: Optional[Iterable[int]] = None,
               target_interval_mm: float = ss.TARGET_INTERVAL_MM) -> np.ndarray:
        """The ``H x W x num_slices`` float32 input around ``key_index`` (layout: see
        :mod:`mmlesion.datasets.slice_sampling`).

        Args:
            series: series name (``PPPPPP_SS_RR``) or folder (when ``image_root`` is None).
            slice_range: ``(first, last)`` absolute, inclusive, of the sub-volume.
            key_index: absolute index of the centre slice.
            slice_interval_mm: the series' real slice interval; 0/None/NaN repeats the key slice.
            num_slices: odd number of channels (3 or 9 in the paper).
            window_hu: ``(low, high)`` HU mapped onto ``out_range``, or a composite of several
                windows (:func:`~mmlesion.datasets.slice_sampling.apply_window`); ``None``
                returns HU.
            out_range: output range of the window.
            missing_slices: absolute indices known to be absent (``None``: check the files).
            target_interval_mm: spacing of the channels (2 mm).

        With ``max_volumes > 0`` the whole sub-volume is decoded once and cached; with 0 only the
        slices the window needs are decoded.
        """
        first, last = _check_range(slice_range)
        offsets = ss.sample_positions(slice_interval_mm, num_slices, target_interval_mm)
        if not first <= int(key_index) <= last:
            raise ValueError(f'key slice {key_index} is outside slice_range {first}-{last} '
                             f'({self.series_dir(series)})')
        if self.max_volumes > 0:
            volume = self.get_volume(series, (first, last), missing_slices)
            if int(key_index) not in volume:
                raise FileNotFoundError(
                    f'key slice not found: {self.slice_path(series, key_index)} '
                    f'(sub-volume {first}-{last})')
            plan = ss.interpolation_plan(key_index, (first, last), volume, offsets)
            stack = ss.blend_slices(plan, volume)
        else:
            if missing_slices is not None:
                available = set(range(first, last + 1)) - {int(i) for i in missing_slices}
            else:
                available = _LazyExists(self, series)
            if int(key_index) not in available:
                raise FileNotFoundError(
                    f'key slice not found: {self.slice_path(series, key_index)}')
            plan = ss.interpolation_plan(key_index, (first, last), available, offsets)
            stack = ss.blend_slices(plan, lambda index: self.read_slice(series, index))
        if window_hu is None:
            return stack
        return ss.apply_window(stack, window_hu, out_range)

    def iter_windows(self,
                     series: str,
                     slice_range: Sequence[int],
                     slice_interval_mm: Optional[float],
                     num_slices: int = 9,
                     window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                     out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
                     missing_slices: Optional[Iterable[int]] = None,
                     target_interval_mm: float = ss.TARGET_INTERVAL_MM,
                     slice_indices: Optional[Iterable[int]] = None
                     ) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(absolute slice index, H x W x num_slices float32)`` for every available slice
        of a sub-volume (or ``slice_indices``), in increasing order, decoding each PNG once even
        when ``max_volumes == 0``.  Arguments as in :meth:`window`.
        """
        first, last = _check_range(slice_range)
        volume = self.get_volume(series, (first, last), missing_slices)
        keys = sorted(volume) if slice_indices is None else [int(i) for i in slice_indices]

        def present(keys):
            for key_index in keys:
                if key_index not in volume:
                    raise FileNotFoundError(
                        f'slice not found: {self.slice_path(series, key_index)} '
                        f'(sub-volume {first}-{last})')
                yield key_index

        yield from volume_windows(volume, (first, last), slice_interval_mm, num_slices,
                                  window_hu, out_range, target_interval_mm, present(keys))


def window_plans(volume: Container[int],
                 slice_range: Sequence[int],
                 slice_interval_mm: Optional[float],
                 num_slices: int = 9,
                 target_interval_mm: float = ss.TARGET_INTERVAL_MM,
                 key_indices: Optional[Iterable[int]] = None
                 ) -> Tuple[List[Tuple[int, ss.InterpolationPlan]], int]:
    """The interpolation plan of every window of a sub-volume.

    Args:
        volume: the available absolute slice indices (a decoded volume's dict works).
        slice_range: ``(first, last)`` absolute, inclusive.
        key_indices: centre slices, in order (default: every slice of ``volume``, increasing).
        Others: as in :meth:`VolumeReader.window`.

    Returns:
        ``([(key index, plan), ...], reach)``: ``reach`` bounds how far (in slices) from its
        key a window reads, so a window at key ``k`` uses no slice below ``k - reach``.
    """
    first, last = _check_range(slice_range)
    offsets = ss.sample_positions(slice_interval_mm, num_slices, target_interval_mm)
    reach = int(np.ceil(np.abs(offsets).max())) if len(offsets) else 0
    keys = sorted(volume) if key_indices is None else key_indices
    return [(k, ss.interpolation_plan(k, (first, last), volume, offsets)) for k in keys], reach


def volume_windows(volume: Dict[int, np.ndarray],
                   slice_range: Sequence[int],
                   slice_interval_mm: Optional[float],
                   num_slices: int = 9,
                   window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                   out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
                   target_interval_mm: float = ss.TARGET_INTERVAL_MM,
                   key_indices: Optional[Iterable[int]] = None
                   ) -> Iterator[Tuple[int, np.ndarray]]:
    """The multi-slice windows of a decoded sub-volume, built from memory.

    Args:
        volume: ``{absolute index: HU H x W}``, the available slices (from
            :meth:`VolumeReader.get_volume` or an in-memory CT).
        slice_range: ``(first, last)`` absolute, inclusive.
        key_indices: centre slices, in order (default: every slice of ``volume``, increasing).
        Others: as in :meth:`VolumeReader.window`.

    Yields:
        ``(absolute slice index, H x W x num_slices float32)``: to the last bit
        ``apply_window(blend_slices(plan, volume))`` of the window's plan, with each distinct
        channel image blended and windowed once (:class:`WindowPlanes`).
    """
    first, last = _check_range(slice_range)
    offsets = ss.sample_positions(slice_interval_mm, num_slices, target_interval_mm)
    reach = int(np.ceil(np.abs(offsets).max())) if len(offsets) else 0
    planes = WindowPlanes(volume, window_hu, out_range)
    for key_index in (sorted(volume) if key_indices is None else key_indices):
        plan = ss.interpolation_plan(key_index, (first, last), volume, offsets)
        yield key_index, planes.stack(plan)
        planes.forget_below(int(key_index) - reach)


class WindowPlanes:
    """The windowed ``H x W`` channel images of a sub-volume's windows, each computed once.

    Neighbouring windows share channels: a slice read whole, or the same two slices blended
    with the same weights.  A channel of an
    :class:`~mmlesion.datasets.slice_sampling.InterpolationPlan` is named by :meth:`keys` --
    ``((i0, None),)`` for slice ``i0`` alone, else the sorted ``((i, float32 weight), ...)``
    pairs of ``w0 * slice[i0] + w1 * slice[i1]`` (float32 weights as
    :func:`~mmlesion.datasets.slice_sampling.blend_slices`; the sum is commutative, so both
    orders are one image) -- and blended, windowed and passed through ``post`` once
    (:meth:`get`).  Windowing is elementwise, so a stack of these images is, to the last bit,
    the windowed stack of the blended channels.

    Args:
        volume: ``{absolute index: HU H x W}``.
        window_hu, out_range: as :func:`~mmlesion.datasets.slice_sampling.apply_window`
            (``window_hu=None``: float32 HU).
        post: applied to each windowed image (e.g. the uint8 rounding of a pipeline that does
            not keep float32); must be elementwise for stacks to equal their parts.
    """

    def __init__(self, volume: Dict[int, np.ndarray], window_hu: Optional[ss.WindowSpec],
                 out_range: Tuple[float, float],
                 post: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        self.volume = volume
        self.window_hu = window_hu
        self.out_range = out_range
        self.post = post
        self.planes: Dict[tuple, np.ndarray] = {}
        self._scratch: Optional[np.ndarray] = None  # w1 * slice[i1] of a blend, reused

    @staticmethod
    def keys(plan: ss.InterpolationPlan) -> List[tuple]:
        """The name of each channel's image (see the class docstring), channel order."""
        out = []
        for (i0, i1), (w0, w1) in zip(plan.indices.tolist(), plan.weights.tolist()):
            if w1 == 0:
                out.append(((i0, None), ))
            else:
                out.append(tuple(sorted(((i0, np.float32(w0)), (i1, np.float32(w1))))))
        return out

    def get(self, key: tuple) -> np.ndarray:
        """The windowed image of the channel named ``key``, computed on first use."""
        img = self.planes.get(key)
        if img is None:
            if key[0][1] is None:
                img = np.asarray(self.volume[key[0][0]])
                own = False
            else:  # channel (i0, w0), (i1, w1) of blend_slices: w0 * s[i0] + w1 * s[i1]
                (i0, w0), (i1, w1) = key
                s0, s1 = np.asarray(self.volume[i0]), np.asarray(self.volume[i1])
                img = w0 * s0
                if self._scratch is None or self._scratch.shape != img.shape or \
                        self._scratch.dtype != img.dtype:
                    self._scratch = np.empty_like(img)
                img += np.multiply(w1, s1, out=self._scratch)  # in place: the same sum
                own = True
            img = (np.asarray(img, dtype=np.float32) if self.window_hu is None else
                   ss.apply_window(img, self.window_hu, self.out_range, overwrite=own))
            if self.post is not None:
                img = self.post(img)
            self.planes[key] = img
        return img

    def stack(self, plan: ss.InterpolationPlan) -> np.ndarray:
        """``H x W x C`` stack of ``plan``'s channel images."""
        chans = [self.get(k) for k in self.keys(plan)]
        shapes = {c.shape for c in chans}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f'slices to blend must be 2D arrays of one shape, got {shapes}')
        return np.stack(chans, axis=-1)

    def forget_below(self, index: int) -> None:
        """Drop the images made only of slices below ``index`` (windows at increasing keys
        past ``index + reach`` cannot use them; one that does recomputes them)."""
        for key in [k for k in self.planes if max(i for i, _ in k) < index]:
            del self.planes[key]


class ResizedPlanes:
    """The channel images of a sub-volume's windows, resized, each once: the windows of a
    per-window resize (``resize(H x W x C) -> H' x W' x C``) built from them.

    A resize that treats channels independently gives a window's channels whether it resizes
    the window or its channel images in groups -- provided the groups take the same arithmetic
    (OpenCV's bilinear resize has its own code for 1, 3 and 4 channels);
    :func:`grouped_resize_is_exact` checks a group size.  Images are resized ``group`` at a
    time, the group filled with the images the next windows need (then repeats of the last).

    Args:
        planes: the windowed channel images (:class:`WindowPlanes`).
        window_keys: the channel keys of every window, in the order they will be asked for.
        resize: ``H x W x group`` -> ``H' x W' x group``.
        group: channels per ``resize`` call; 0: ``resize`` is the identity (a resize to the
            same size copies), the images are used as they are.
    """

    def __init__(self, planes: WindowPlanes, window_keys: Sequence[Sequence[tuple]],
                 resize: Callable[[np.ndarray], np.ndarray], group: int):
        self.planes = planes
        self.window_keys = [list(k) for k in window_keys]
        self.resize = resize
        self.group = int(group)
        self.resized: Dict[tuple, np.ndarray] = {}
        self._buf: Optional[np.ndarray] = None  # the group's H x W x group input, reused

    def _missing(self, n: int, taken: list) -> List[tuple]:
        return [k for k in dict.fromkeys(self.window_keys[n])
                if k not in self.resized and k not in taken]

    def chw(self, n: int) -> np.ndarray:
        """``C x H' x W'`` (contiguous) of window ``n``: its resized channel images."""
        todo = self._missing(n, [])
        m = n + 1
        while self.group and len(todo) % self.group and m < len(self.window_keys):
            todo += self._missing(m, todo)[:self.group - len(todo) % self.group]  # fill a group
            m += 1
        step = max(self.group, 1)
        for start in range(0, len(todo), step):
            keys = todo[start:start + step]
            imgs = [self.planes.get(k) for k in keys]
            if self.group == 0:  # the identity: the images themselves
                out = np.stack(imgs, axis=-1)
            else:
                imgs += [imgs[-1]] * (self.group - len(imgs))
                shape = (*imgs[0].shape, self.group)
                if self._buf is None or self._buf.shape != shape or \
                        self._buf.dtype != imgs[0].dtype:
                    self._buf = np.empty(shape, imgs[0].dtype)
                out = np.asarray(self.resize(np.stack(imgs, axis=-1, out=self._buf)))
                out = out.reshape(*out.shape[:2], -1)  # OpenCV drops a single channel's axis
            for c, k in enumerate(keys):
                # contiguous: a channel image is copied into each of the windows using it
                self.resized[k] = imgs[c] if self.group == 0 else np.ascontiguousarray(
                    out[..., c])
                self.planes.planes.pop(k, None)  # the full-size image is not needed again
        return np.stack([self.resized[k] for k in self.window_keys[n]], axis=0)

    def forget_below(self, index: int) -> None:
        """As :meth:`WindowPlanes.forget_below`."""
        self.planes.forget_below(index)
        for key in [k for k in self.resized if max(i for i, _ in k) < index]:
            del self.resized[key]


def grouped_resize_is_exact(resize: Callable[[np.ndarray], np.ndarray], shape: Tuple[int, int],
                            channels: int, group: int, dtype=np.float32, seed: int = 0) -> bool:
    """Whether resizing ``channels`` images ``group`` at a time gives, bit for bit, each channel
    of resizing them at once -- checked on random ``H x W`` images of ``dtype`` (the code path
    of a resize depends on the geometry, channel count and type, not on the values).
    ``group=0``: whether the resize returns its input unchanged.
    """
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        img = rng.integers(0, 256, (*shape, channels)).astype(dtype)
    else:
        img = rng.uniform(-1000.0, 1000.0, (*shape, channels)).astype(dtype)
    whole = np.asarray(resize(img))
    whole = whole.reshape(*whole.shape[:2], -1)
    if group == 0:
        return whole.dtype == img.dtype and np.array_equal(whole, img)
    for start in range(0, channels, group):
        idx = list(range(start, min(start + group, channels)))
        idx += [idx[-1]] * (group - len(idx))
        part = np.asarray(resize(np.ascontiguousarray(img[..., idx])))
        part = part.reshape(*part.shape[:2], -1)
        if part.dtype != whole.dtype or part.shape[:2] != whole.shape[:2] or any(
                not np.array_equal(part[..., c], whole[..., i])
                for c, i in enumerate(idx[:min(group, channels - start)])):
            return False
    return True


def _check_range(slice_range: Sequence[int]) -> Tuple[int, int]:
    try:
        first, last = (int(v) for v in slice_range)
    except (TypeError, ValueError):
        raise ValueError(f'slice_range must be (first, last) absolute slice indices, '
                         f'got {slice_range!r}') from None
    if first > last:
        raise ValueError(f'slice_range must have first <= last, got {slice_range!r}')
    return first, last
