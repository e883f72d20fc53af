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
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

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
        ``(absolute slice index, H x W x num_slices float32)``.
    """
    first, last = _check_range(slice_range)
    offsets = ss.sample_positions(slice_interval_mm, num_slices, target_interval_mm)
    for key_index in (sorted(volume) if key_indices is None else key_indices):
        plan = ss.interpolation_plan(key_index, (first, last), volume, offsets)
        stack = ss.blend_slices(plan, volume)
        if window_hu is not None:
            stack = ss.apply_window(stack, window_hu, out_range)
        yield key_index, stack


def _check_range(slice_range: Sequence[int]) -> Tuple[int, int]:
    try:
        first, last = (int(v) for v in slice_range)
    except (TypeError, ValueError):
        raise ValueError(f'slice_range must be (first, last) absolute slice indices, '
                         f'got {slice_range!r}') from None
    if first > last:
        raise ValueError(f'slice_range must have first <= last, got {slice_range!r}')
    return first, last
