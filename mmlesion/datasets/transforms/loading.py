"""Loading transforms: the multi-slice CT input around a key slice, and lesion annotations with
their hard-negative flags."""
import posixpath
from collections import OrderedDict
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS

from .. import slice_sampling as ss
from ..volume_reader import VolumeReader


def _split_slice_path(img_path: str) -> Tuple[str, str]:
    # Series folder and file name of a slice path; '/' also separates URL-style backend paths.
    path = str(img_path).replace('\\', '/')
    return posixpath.dirname(path), posixpath.basename(path)


@TRANSFORMS.register_module()
class LoadMultiSliceFromFile(BaseTransform):
    """Load the ``H x W x num_slices`` window of a DeepLesion key slice from 16-bit PNGs.

    Neighbour slices are read from the key slice's series folder (``<series dir>/<KKK>.png``),
    resampled to ``slice_interval_mm`` spacing by linear interpolation between the two nearest real
    slices (missing slices -> nearest existing toward the key; slice interval 0/None/NaN -> the key
    slice repeated), converted to HU (raw - 32768) and windowed.  Channels are ordered by increasing
    slice index with the key slice at channel ``num_slices // 2``; a 9-slice input is 3 groups of 3
    channels, the key in the central group (see :mod:`mmlesion.datasets.slice_sampling`).

    Required keys: ``img_path`` (the key slice PNG), ``slice_index`` (absolute),
    ``slice_range`` (absolute, inclusive), ``slice_interval`` (mm; may be 0/None/NaN).
    Optional keys: ``missing_slices`` (absolute indices absent from disk; ``None``: check files).

    Added keys: ``img`` (``H x W x num_slices``, float32 in ``out_range``, or uint8 when
    ``to_float32=False``), ``img_shape``, ``ori_shape`` (``(H, W)`` px), ``num_slices``.

    Args:
        num_slices: odd number of input slices (3 or 9 in the paper).
        slice_interval_mm: spacing of the input slices (the paper resamples to 2 mm).
        window_hu: ``(low, high)`` HU mapped onto ``out_range`` (3DCE/MULAN: -1024, 3071), or a
            composite ``[(low, high), ...]``: the mean of several windows' images
            (:func:`~mmlesion.datasets.slice_sampling.apply_window`); ``None`` keeps HU.
        out_range: output intensity range of the window.
        to_float32: float32 output; ``False`` rounds to uint8 (requires a window and
            ``out_range`` within [0, 255]).
        cache_volumes: decoded sub-volumes to keep per worker (LRU).  0 decodes only the slices
            each sample needs (random access during training); > 0 pays off when consecutive
            samples come from one sub-volume (volume-wise scans).
        cache_samples: windowed inputs to keep per worker (LRU), keyed by key slice.  Training
            revisits the same key slices every epoch; with persistent data workers a cache
            holding the whole training set decodes and windows each sample once (memory:
            ``H * W * num_slices * 4`` bytes per sample, e.g. 2.4 MB for 9 x 256 x 256 --
            1.4 GB for the demo's 589 key slices; far too much for all of DeepLesion, so 0,
            the default, caches nothing).  Each call returns a copy, so later transforms may
            modify it.
        backend_args: mmengine.fileio backend arguments.
    """

    def __init__(self,
                 num_slices: int = 9,
                 slice_interval_mm: float = ss.TARGET_INTERVAL_MM,
                 window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                 out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
                 to_float32: bool = True,
                 cache_volumes: int = 0,
                 cache_samples: int = 0,
                 backend_args: Optional[dict] = None) -> None:
        ss.sample_positions(1.0, num_slices, slice_interval_mm)  # validates both
        window_hu = None if window_hu is None else ss.normalize_window(window_hu)
        if not to_float32 and (window_hu is None or min(out_range) < 0 or max(out_range) > 255):
            raise ValueError('to_float32=False stores uint8: it needs a window and an out_range '
                             f'within [0, 255], got window_hu={window_hu!r}, '
                             f'out_range={out_range!r}')
        self.num_slices = int(num_slices)
        self.slice_interval_mm = float(slice_interval_mm)
        self.window_hu = window_hu
        self.out_range = (float(out_range[0]), float(out_range[1]))
        self.to_float32 = to_float32
        self.cache_volumes = int(cache_volumes)
        if int(cache_samples) < 0:
            raise ValueError(f'cache_samples must be >= 0, got {cache_samples!r}')
        self.cache_samples = int(cache_samples)
        self._sample_cache: 'OrderedDict[tuple, np.ndarray]' = OrderedDict()
        self.backend_args = backend_args
        self.reader = VolumeReader(None, max_volumes=self.cache_volumes, backend_args=backend_args)

    def transform(self, results: dict) -> dict:
        img_path = results.get('img_path')
        missing_keys = [
            k for k in ('img_path', 'slice_index', 'slice_range') if results.get(k) is None]
        if missing_keys:
            raise KeyError(f'LoadMultiSliceFromFile needs {missing_keys} in the data info of '
                           f'{img_path or results.get("img_id")!r} (use DeepLesionDataset or give '
                           'them in the JSON images)')
        series_dir, file_name = _split_slice_path(img_path)
        key_index = int(results['slice_index'])
        if file_name != f'{key_index:03d}.png':
            raise ValueError(f'{img_path}: file name does not match slice_index {key_index} '
                             f'(expected {key_index:03d}.png)')
        missing = results.get('missing_slices')
        cache_key = img = None
        if self.cache_samples:
            cache_key = (str(img_path), tuple(int(v) for v in results['slice_range']),
                         results.get('slice_interval'),
                         None if missing is None else tuple(sorted(int(v) for v in missing)))
            img = self._sample_cache.get(cache_key)
        if img is not None:
            self._sample_cache.move_to_end(cache_key)
        else:
            img = self.reader.window(
                series_dir,
                results['slice_range'],
                key_index,
                results.get('slice_interval'),
                num_slices=self.num_slices,
                window_hu=self.window_hu,
                out_range=self.out_range,
                missing_slices=missing,
                target_interval_mm=self.slice_interval_mm)
            if not self.to_float32:
                img = np.round(img).astype(np.uint8)
            if self.cache_samples:
                self._sample_cache[cache_key] = img
                if len(self._sample_cache) > self.cache_samples:
                    self._sample_cache.popitem(last=False)
        results['img'] = img.copy() if self.cache_samples else img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['num_slices'] = self.num_slices
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_slices={self.num_slices}, '
                f'slice_interval_mm={self.slice_interval_mm}, window_hu={self.window_hu}, '
                f'out_range={self.out_range}, to_float32={self.to_float32}, '
                f'cache_volumes={self.cache_volumes}, cache_samples={self.cache_samples}, '
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadLesionAnnotations(LoadAnnotations):
    """mmdet's ``LoadAnnotations`` plus the hard-negative flag of every box.

    Added key (with ``with_bbox``): ``gt_hard_negative_flags`` — bool array ``(N,)`` aligned with
    ``gt_bboxes`` / ``gt_bboxes_labels`` / ``gt_ignore_flags``, from each instance's
    ``hard_negative`` (missing -> False).  Boxes are 0-based pixels ``x1, y1, x2, y2`` on the key
    slice.  :class:`RandomLesionCrop` filters it with the boxes; mmdet's transforms that drop
    boxes (its crops, ``FilterAnnotations``) don't know this key; flips and resizes keep the
    order, and :class:`PackLesionInputs` checks the lengths still agree.
    """

    def __init__(self, with_hard_negative: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_hard_negative = with_hard_negative

    def _load_hard_negative_flags(self, results: dict) -> None:
        flags = [bool(instance.get('hard_negative', False))
                 for instance in results.get('instances', [])]
        results['gt_hard_negative_flags'] = np.array(flags, dtype=bool)

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if self.with_bbox and self.with_hard_negative:
            self._load_hard_negative_flags(results)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', with_hard_negative={self.with_hard_negative})'
