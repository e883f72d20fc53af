"""Volume inference as a library call: a detector, a CT sub-volume in, 3D tracklets out.

::

    from mmlesion.apis import init_lesion_detector, predict_volume
    model = init_lesion_detector('configs/mscn_hnsl.py', 'work_dirs/mscn_hnsl/epoch_8.pth',
                                 device='cuda:0', trust_checkpoint=True)
    tracklets = predict_volume(model, '000001_01_01_103-115', image_root='Images_png',
                               series_info='DL_info.csv')                # DeepLesion PNGs
    tracklets = predict_volume(model, hu_array, spacing=(0.7, 0.7, 2.5))  # (Z, H, W) HU array

One path serves everyone who needs "predict this volume" -- the volume-scan test loop
(:class:`~mmlesion.engine.volume_scan.VolumeScanTestLoop`), the tools, the benchmarks and the
harvest rounds -- so all of them see the same inputs and the same stacking:

1. every available slice is decoded once and every multi-slice window is built from memory,
   with the windowing and resampling settings of the test pipeline's ``LoadMultiSliceFromFile``
   (:class:`VolumeScanInputs`);
2. the rest of the test pipeline (``RescaleToSpacing``, ``PackLesionInputs``; loading transforms
   are skipped) turns each window into model inputs -- for that standard pipeline by resizing
   each distinct channel image once rather than every window whole, with the same inputs to the
   last bit (:class:`VolumeScanInputs`; ``tools/benchmarks/bench_scan.py`` times it);
3. ``model.test_step`` runs on mini-batches of ``batch_size`` slices of one volume; mmdet's
   ``predict(rescale=True)`` divides the boxes by the metainfo ``scale_factor``, so they come
   back in the original slice frame (0-based pixels);
4. :func:`mmlesion.stacking.stack_volume` links them into tracklets (t_G = ``score_thr``,
   IoU > ``link_iou``, gap bridging with ``extend`` / ``fuse_iou``; docs/method.md#stacking).

Frames (:mod:`mmlesion.structures.conventions`): tracklets are in mmlesion's frame, absolute z
(an array volume counts its slices from ``first_slice``), 0-based continuous-corner pixels.
"""
import contextlib
import copy
import math
import os.path as osp
from collections import deque
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint, load_state_dict
from torch.utils.data import DataLoader, Dataset

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import MODELS, TRANSFORMS
from mmlesion.datasets.converters.annotation_release import load_series_info
from mmlesion.datasets.transforms.formatting import PackLesionInputs
from mmlesion.datasets.transforms.geometric import RescaleToSpacing
from mmlesion.datasets.transforms.loading import LoadMultiSliceFromFile
from mmlesion.datasets.volume_reader import (
    ResizedPlanes,
    VolumeReader,
    WindowPlanes,
    grouped_resize_is_exact,
    window_plans,
)
from mmlesion.stacking import stack_volume
from mmlesion.structures.tracklet import Tracklet
from mmlesion.structures.volume import VolumeInfo, volume_info_from_key

__all__ = ['init_lesion_detector', 'predict_volume', 'predict_volumes', 'VolumePredictor',
           'VolumePrediction', 'VolumeScanInputs', 'ArrayVolume', 'split_test_pipeline',
           'get_test_pipeline', 'fill_spacing', 'check_series_folders', 'LOADING_TRANSFORMS',
           'ARRAY_VOLUME_KEY', 'AMP_DTYPES']

# transforms that read files: the volume scan replaces them by the volume reader
LOADING_TRANSFORMS = ('LoadMultiSliceFromFile', 'LoadLesionAnnotations', 'LoadAnnotations',
                      'LoadImageFromFile')
# the key of an in-memory volume that names no DeepLesion sub-volume
ARRAY_VOLUME_KEY = 'array'
# VolumePredictor(amp_dtype=...): the autocast dtypes, by the names a config gives them
AMP_DTYPES = {'fp16': torch.float16, 'float16': torch.float16, 'bf16': torch.bfloat16,
              'bfloat16': torch.bfloat16}


# ---------------------------------------------------------------------------------- the model
def init_lesion_detector(config: Union[str, Config, dict],
                         checkpoint: Optional[str] = None,
                         device: str = 'cpu',
                         cfg_options: Optional[dict] = None,
                         trust_checkpoint: bool = False) -> torch.nn.Module:
    """Build a detector from a config and load its weights, ready for :func:`predict_volume`.

    Args:
        config: config file path, :class:`~mmengine.config.Config` or dict.
        checkpoint: weights to load (None: random initialisation, for tests).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...
        cfg_options: overrides merged into the config (``{'model.test_cfg.topk': 50}``).
        trust_checkpoint: fully unpickle ``checkpoint`` (a training checkpoint you wrote: it
            holds optimizer and logger state); otherwise it must load weights-only
            (:class:`~mmlesion.engine.checkpoint.UntrustedCheckpointError` says what to do).

    Returns:
        the model in eval mode on ``device``, with ``model.cfg`` (the config, whose test
        pipeline :func:`predict_volume` reuses) and ``model.dataset_meta``.
    """
    if isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        cfg = Config.fromfile(str(config))
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        cfg = Config(copy.deepcopy(config))
    else:
        raise TypeError(f'config must be a path, Config or dict, got {type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{config}: the config has no "model"')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('init_cfg', None)  # pretrained backbones: the checkpoint replaces them
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg['backbone'].pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        if trust_checkpoint:
            # full unpickling of this one file, without trusting its folder process-wide
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
            ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
            state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
            state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                          for k, v in state_dict.items()}
            load_state_dict(model, state_dict)
        else:
            # mmlesion's loader for local files: weights-only, with advice when refused
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        model.dataset_meta = dict(meta.get('dataset_meta') or {})
    if not getattr(model, 'dataset_meta', None):
        model.dataset_meta = dict(classes=('lesion', ))
    model.cfg = cfg
    model.to(device)
    model.eval()
    return model


def get_test_pipeline(cfg: Union[Config, Mapping]) -> list:
    """The test pipeline of a config: ``test_dataloader.dataset.pipeline`` (through dataset
    wrappers), else ``test_pipeline``.

    Raises:
        KeyError: the config has neither.
    """
    loader = cfg.get('test_dataloader') or {}
    ds = loader.get('dataset') if isinstance(loader, Mapping) else None
    while isinstance(ds, Mapping) and 'dataset' in ds:
        ds = ds['dataset']
    pipeline = ds.get('pipeline') if isinstance(ds, Mapping) else None
    pipeline = pipeline or cfg.get('test_pipeline')
    if not pipeline:
        raise KeyError('the config has no test pipeline (test_dataloader.dataset.pipeline or '
                       'test_pipeline); pass pipeline= explicitly')
    return list(pipeline)


def _type_name(t) -> str:
    if isinstance(t, dict):
        typ = t.get('type')
        return typ if isinstance(typ, str) else getattr(typ, '__name__', str(typ))
    return type(t).__name__


def split_test_pipeline(pipeline: Sequence) -> tuple:
    """Split a test pipeline into its ``LoadMultiSliceFromFile`` and the remaining transforms.

    Args:
        pipeline: transform configs (dicts) or built transforms.

    Returns:
        ``(loader, transforms)``: the built :class:`LoadMultiSliceFromFile` (its settings drive the
        volume reader) and the built transforms that follow, loading transforms removed.

    Raises:
        ValueError: the pipeline has no ``LoadMultiSliceFromFile``.
    """
    loader, rest = None, []
    for t in pipeline:
        name = _type_name(t)
        if name == 'LoadMultiSliceFromFile':
            loader = TRANSFORMS.build(copy.deepcopy(t)) if isinstance(t, dict) else t
        elif name in LOADING_TRANSFORMS:
            continue
        else:
            rest.append(TRANSFORMS.build(copy.deepcopy(t)) if isinstance(t, dict) else t)
    if not isinstance(loader, LoadMultiSliceFromFile):
        names = [_type_name(t) for t in pipeline]
        raise ValueError('volume inference needs a test pipeline with LoadMultiSliceFromFile '
                         f'(its window settings are reused); got {names}')
    return loader, rest


# ---------------------------------------------------------------------------------- volumes
def fill_spacing(volumes: Sequence[VolumeInfo], sources: Sequence[str],
                 what: str = 'the annotation file', option: str = 'series_info') -> None:
    """Set pixel spacing and slice interval of the volumes that lack them, in place.

    Args:
        volumes: the sub-volumes.
        sources: ``DL_info.csv`` files, converted JSONs or folders holding either, tried in
            order until every volume has a spacing.
        what: names the volumes' origin in the error.
        option: the setting the error tells the user to give (``series_info`` of
            :func:`predict_volumes`; the loop's ``test_cfg.series_info``).

    Raises:
        ValueError: volumes remain without spacing (``RescaleToSpacing`` needs mm/px), naming
            them and the sources tried.
    """
    lacking = [v for v in volumes if not v.has_spacing]
    for src in sources:
        if not lacking:
            return
        info = load_series_info(src)
        for v in lacking:
            s = info.get(v.series)
            if s is None or s.get('spacing') is None:
                continue
            v.spacing = [None if x is None else float(x) for x in s['spacing']]
            interval = s.get('slice_interval')
            v.slice_interval = None if interval is None else float(interval)
        lacking = [v for v in lacking if not v.has_spacing]
    if lacking:
        raise ValueError(
            f'no pixel spacing for {len(lacking)} volume(s) of {what}, e.g. '
            f'{[v.key for v in lacking[:3]]}; looked in {list(sources) or "nothing"}. Give '
            f'{option} = DL_info.csv or a converted JSON covering their series '
            '(RescaleToSpacing needs mm/px)')


def check_series_folders(volumes: Sequence[VolumeInfo], image_root: Optional[str],
                         what: str = 'the annotation file',
                         backend_args: Optional[dict] = None) -> None:
    """Raise FileNotFoundError naming the series folders missing under ``image_root``
    (skipped for remote storage, where missing files surface when read)."""
    if backend_args is not None or '://' in str(image_root):
        return
    missing = sorted({v.series for v in volumes
                      if not osp.isdir(osp.join(image_root or '', v.series))})
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} series folder(s) of {what} are not under the image root '
            f'{image_root!r}, e.g. {missing[:5]}')


@dataclass
class ArrayVolume:
    """An in-memory CT volume: ``hu`` ``(Z, H, W)`` HU, slice ``k`` = absolute index
    ``first_slice + k``; ``spacing`` ``[x, y, z]`` mm (z = slice interval)."""
    hu: np.ndarray
    spacing: Tuple[float, float, float]
    first_slice: int = 0
    key: str = ARRAY_VOLUME_KEY

    def info(self) -> VolumeInfo:
        n = int(self.hu.shape[0])
        return VolumeInfo(key=self.key, series=self.key,
                          slice_range=(self.first_slice, self.first_slice + n - 1),
                          spacing=[float(v) for v in self.spacing],
                          slice_interval=float(self.spacing[2]), missing_slices=[],
                          image_size=(int(self.hu.shape[2]), int(self.hu.shape[1])))

    def slices(self) -> Dict[int, np.ndarray]:
        return {self.first_slice + k: self.hu[k] for k in range(self.hu.shape[0])}


def _as_array_volume(hu: np.ndarray, spacing, first_slice: int) -> ArrayVolume:
    hu = np.asarray(hu)
    if hu.ndim != 3 or min(hu.shape) < 1:
        raise ValueError(f'an array volume must be (Z, H, W) HU, got shape {hu.shape}')
    if spacing is None or len(spacing) != 3 or not all(
            v is not None and math.isfinite(float(v)) and float(v) > 0 for v in spacing):
        raise ValueError('an array volume needs spacing=(x, y, z) mm, all positive (z = slice '
                         f'interval), got {spacing!r}')
    return ArrayVolume(hu.astype(np.float32, copy=False), tuple(float(v) for v in spacing),
                       int(first_slice))


class VolumeScanInputs(Dataset):
    """Model inputs of whole sub-volumes: item ``i`` = every available slice of volume ``i``.

    Each item is ``dict(volume=VolumeInfo, slices=[(z, packed), ...], image_size=(W, H),
    num_decoded=int)``; ``packed`` is the output of the transforms (``inputs`` ``C x H' x W'``
    tensor and a ``DetDataSample``), ``z`` the absolute slice index, ``image_size`` the original
    slice size in px.  Volumes are read from DeepLesion-format PNGs (``VolumeInfo``) or taken
    from memory (:class:`ArrayVolume`).

    Neighbouring windows share channel images (one slice, or two slices blended with the same
    weights): each is blended and windowed once per volume
    (:class:`~mmlesion.datasets.volume_reader.WindowPlanes`).  When the transforms are
    ``[RescaleToSpacing, PackLesionInputs]`` (the scan's pipeline), the first window goes
    through them as is, and the others are built from channel images resized once each
    (:class:`~mmlesion.datasets.volume_reader.ResizedPlanes`), stacked channel-first, and get
    the first window's resize metadata -- only where resizing channels in groups reproduces
    resizing a whole window bit for bit (checked per geometry on random data, and on the first
    window); otherwise every window is resized whole.

    Args:
        volumes: the sub-volumes (with spacing).
        image_root: folder of the series folders (``Images_png``); unused for array volumes.
        loader: the test pipeline's ``LoadMultiSliceFromFile`` (slices, interval, window).
        transforms: transforms applied to each window (resize, pack).
        cache_volumes: decoded volumes kept by the reader (1 lets overlays reuse the last one).
        strict: False: an unreadable or odd-sized slice is treated as missing and a volume
            without any readable slice yields an item with ``error`` set and no slices, instead
            of raising (the item's ``bad_slices`` name them).
    """

    def __init__(self, volumes: Sequence[Union[VolumeInfo, ArrayVolume]],
                 image_root: Optional[str], loader: LoadMultiSliceFromFile,
                 transforms: Sequence, cache_volumes: int = 1, strict: bool = True):
        self.volumes = list(volumes)
        self.image_root = image_root
        self.loader = loader
        self.transforms = list(transforms)
        self.strict = bool(strict)
        self.reader = VolumeReader(image_root, max_volumes=cache_volumes,
                                   backend_args=loader.backend_args, strict=strict)

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> dict:
        vol = self.volumes[index]
        info = vol.info() if isinstance(vol, ArrayVolume) else vol
        decoded, bad = self.reader.num_decoded, len(self.reader.bad_slices)
        try:
            slices, size = self._prepare(vol, info)
            error = None
        except FileNotFoundError as e:
            if self.strict:
                raise
            slices, size, error = [], None, str(e)
        return dict(volume=info, slices=slices, image_size=size,
                    num_decoded=self.reader.num_decoded - decoded,
                    bad_slices=list(self.reader.bad_slices[bad:]), error=error)

    def _prepare(self, vol: Union[VolumeInfo, ArrayVolume], info: VolumeInfo) -> tuple:
        ld = self.loader
        if isinstance(vol, ArrayVolume):
            volume = vol.slices()
        else:
            volume = self.reader.get_volume(vol.series, vol.slice_range, vol.missing_slices)
        plans, reach = window_plans(volume, info.slice_range, info.slice_interval,
                                    num_slices=ld.num_slices,
                                    target_interval_mm=ld.slice_interval_mm)
        planes = WindowPlanes(volume, ld.window_hu, ld.out_range,
                              post=None if ld.to_float32 else _round_to_uint8)
        plane_wise = _plane_wise_resize(self.transforms)
        resized, meta = None, None
        slices, size = [], None
        for n, (z, plan) in enumerate(plans):
            if resized is not None:
                # the resize's metadata are the first window's; its pixels come plane-wise
                results = self._sample(vol, info, z, size)
                results.update(copy.deepcopy(meta))
                results['img'] = resized.chw(n).transpose(1, 2, 0)  # packed without a copy
                results = self._transform(self.transforms[1:], results, z, info)
            else:
                img = planes.stack(plan)
                size = (img.shape[1], img.shape[0])
                results = self._sample(vol, info, z, size)
                results['img'] = img
                if plane_wise is not None and n == 0:
                    before = dict(results)
                    results = self._transform(self.transforms[:1], results, z, info)
                    meta = {k: v for k, v in results.items()
                            if k != 'img' and (k not in before or before[k] is not v)}
                    resized = _resized_planes(plane_wise, planes, plans, results)
                    results = self._transform(self.transforms[1:], results, z, info)
                else:
                    results = self._transform(self.transforms, results, z, info)
            slices.append((int(z), results))
            (planes if resized is None else resized).forget_below(int(z) - reach)
        return slices, size

    def _sample(self, vol, info: VolumeInfo, z: int, size: Tuple[int, int]) -> dict:
        """The results dict of the window at ``z`` before the transforms (``img`` not set)."""
        ld = self.loader
        w, h = size
        img_path = (f'<array>/{z:03d}' if isinstance(vol, ArrayVolume) else
                    self.reader.slice_path(info.series, z))
        return dict(
            img_shape=(h, w), ori_shape=(h, w), height=h, width=w, num_slices=ld.num_slices,
            img_path=img_path, img_id=f'{info.key}/{z:03d}', volume_id=info.key,
            series=info.series, slice_index=int(z), slice_range=list(info.slice_range),
            spacing=list(info.spacing), slice_interval=info.slice_interval,
            missing_slices=info.missing_slices)

    @staticmethod
    def _transform(transforms: Sequence, results: dict, z: int, info: VolumeInfo) -> dict:
        for t in transforms:
            results = t(results)
            if results is None:
                raise ValueError(f'{type(t).__name__} dropped slice {z} of {info.key}: the '
                                 'volume scan needs every slice (no filtering transforms)')
        return results


def _round_to_uint8(img: np.ndarray) -> np.ndarray:
    """``LoadMultiSliceFromFile(to_float32=False)``'s storage of a windowed image."""
    return np.round(img).astype(np.uint8)


def _plane_wise_resize(transforms: Sequence) -> Optional[RescaleToSpacing]:
    """The ``RescaleToSpacing`` of a ``[RescaleToSpacing, PackLesionInputs]`` pipeline (the
    scan's), whose windows can be resized plane by plane; None for any other pipeline."""
    if (len(transforms) == 2 and type(transforms[0]) is RescaleToSpacing
            and type(transforms[1]) in (PackLesionInputs, PackDetInputs)
            and transforms[0].backend == 'cv2'):
        return transforms[0]
    return None


# (in H, in W, scale, dtype, channels, interpolation) -> the exact channel group, or None
_EXACT_GROUPS: Dict[tuple, Optional[int]] = {}


def _resized_planes(rescale: RescaleToSpacing, planes: WindowPlanes, plans: list,
                    first: dict) -> Optional[ResizedPlanes]:
    """Plane-wise resizing of a volume's windows, when it gives the windows' resize bit for bit.

    ``first``: the first window's results after ``rescale`` (its scale, and its resized image,
    which the plane-wise one must equal).  Each distinct channel image is then resized once
    instead of once per window that uses it, and the windows are stacked channel-first, as the
    packing wants them.  None (resize whole windows) where the check fails.
    """
    img = first['img']
    channels = len(plans[0][1].indices)
    scale = tuple(first['scale'])

    def resize(x: np.ndarray) -> np.ndarray:
        return mmcv.imresize(x, scale, interpolation=rescale.interpolation,
                             backend=rescale.backend)

    h, w = first['ori_shape']
    key = (h, w, scale, np.dtype(img.dtype).str, channels, rescale.interpolation)
    if key not in _EXACT_GROUPS:
        # 0: resizing to the same size copies (checked on random data like the groups)
        _EXACT_GROUPS[key] = next(
            (g for g in dict.fromkeys((0, 2, channels)) if (g or scale == (w, h)) and
             grouped_resize_is_exact(resize, (h, w), channels, g, img.dtype)), None)
    group = _EXACT_GROUPS[key]
    if group is None:
        return None
    out = ResizedPlanes(planes, [planes.keys(plan) for _, plan in plans], resize, group)
    chw = out.chw(0)
    if chw.dtype != img.dtype or not np.array_equal(chw, np.moveaxis(img.reshape(
            *img.shape[:2], -1), -1, 0)):
        return None  # never seen; the windows are then resized whole, as before
    return out


def _identity(item):
    return item


# ---------------------------------------------------------------------------------- prediction
@dataclass
class VolumePrediction:
    """What a scan of one sub-volume produced.

    Attributes:
        volume: the sub-volume.
        tracklets: stacked 3D proposals, highest score first (mmlesion's frame).
        slice_dets: ``{z: (n, 5) float64 [x1, y1, x2, y2, score]}``, every scanned slice, the
            detector's boxes in the original slice frame (0-based px) before stacking.
        image_size: ``(W, H)`` px of the slices (None when no slice was scanned).
        num_slices: slices scanned.
        num_decoded: PNG files decoded for this volume (0 when a worker cache served them).
        bad_slices: ``[(path, reason)]`` of slices skipped as unreadable (``strict=False``).
        error: why the volume could not be scanned at all (``strict=False``), else None.
    """
    volume: VolumeInfo
    tracklets: List[Tracklet]
    slice_dets: Dict[int, np.ndarray] = field(default_factory=dict)
    image_size: Optional[Tuple[int, int]] = None
    num_slices: int = 0
    num_decoded: int = 0
    bad_slices: List[Tuple[str, str]] = field(default_factory=list)
    error: Optional[str] = None


class VolumePredictor:
    """Prepare and predict whole sub-volumes with one detector: the one inference path.

    Args:
        model: the detector (``test_step`` as mmdet's detectors; a DDP wrapper works too).
        pipeline: test pipeline (configs or transforms) with ``LoadMultiSliceFromFile``; None:
            the pipeline of ``model.cfg`` (:func:`init_lesion_detector` sets it).
        score_thr: t_G, keep slice detections scoring above it (0.1, the paper's harvesting
            value).
        link_iou: IoU a detection must exceed to extend a track (0.8).
        extend: slices of virtual extension for gap bridging (1).
        fuse_iou: overlap to fuse tracks across a gap (0.8).
        batch_size: slices per ``test_step``.
        fp16: autocast the model in half precision, as mmengine's ``autocast()`` does: float16 on
            CUDA, bfloat16 on the CPU.  The same as ``amp_dtype='fp16'`` on CUDA.
        amp_dtype: autocast the model in this dtype: ``'bf16'`` / ``'bfloat16'`` or ``'fp16'`` /
            ``'float16'`` (None: float32, unless ``fp16``).
        channels_last: convert the model's weights (in place, at the first forward pass) and each
            batch's inputs to channels-last memory layout (NHWC): faster convolutions on GPUs
            with tensor cores and on many CPUs; the same numbers to float tolerance.
        cross_volume: fill every forward pass with ``batch_size`` slices taken from consecutive
            volumes (False: each pass holds slices of one volume, so a volume of 10 slices at
            batch 16 runs one pass of 10).  Only slices whose model inputs have the same shape
            share a pass -- DeepLesion's volumes are resized to their own spacing, and padding a
            slice to a larger batch would change its detections -- and each volume's detections
            are routed back to it and stacked as before.  See :meth:`predict_items`.
        open_volumes: ``cross_volume``: prepared volumes held at most while their slices wait
            for a full batch of their shape; beyond it the oldest volume's slices run in a
            smaller batch (bounds host memory: a 60-slice 9 x 448 px volume is ~0.5 GB).
        pin_memory: prepare volumes into page-locked (pinned) host memory and copy them to the
            GPU with ``non_blocking`` copies, so that the copy overlaps the model; None (default):
            when the model is on CUDA.
        compile: compile the network's backbone, neck and head with ``torch.compile`` at the
            first forward pass (in place; each new input shape compiles once more, seconds to a
            minute): the same numbers to float tolerance, faster on GPUs
            (docs/results.md#scan-gpu).
        strict: True: an unreadable slice or a volume without slices raises.  False (scans of
            many volumes): the slice is treated as missing, the volume is reported with
            ``error`` and no tracklets (:class:`VolumePrediction`).
    """

    def __init__(self, model, pipeline: Optional[Sequence] = None, *, score_thr: float = 0.1,
                 link_iou: float = 0.8, extend: int = 1, fuse_iou: float = 0.8,
                 batch_size: int = 8, fp16: bool = False, amp_dtype: Optional[str] = None,
                 channels_last: bool = False, cross_volume: bool = False,
                 open_volumes: int = 4, pin_memory: Optional[bool] = None,
                 compile: bool = False, strict: bool = True) -> None:
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if int(open_volumes) < 1:
            raise ValueError(f'open_volumes must be >= 1, got {open_volumes}')
        if amp_dtype is not None:
            if str(amp_dtype).lower() not in AMP_DTYPES:
                raise ValueError(f'amp_dtype must be one of {sorted(AMP_DTYPES)} or None, got '
                                 f'{amp_dtype!r}')
            amp_dtype = 'bf16' if AMP_DTYPES[str(amp_dtype).lower()] is torch.bfloat16 \
                else 'fp16'
            if fp16 and amp_dtype != 'fp16':
                raise ValueError(f'fp16=True asks for float16 and amp_dtype={amp_dtype!r} for '
                                 'bfloat16: give one of them')
        if pipeline is None:
            cfg = getattr(model, 'cfg', None) or getattr(getattr(model, 'module', None), 'cfg',
                                                         None)
            if cfg is None:
                raise ValueError('the model has no .cfg (build it with init_lesion_detector) '
                                 'and no pipeline was given')
            pipeline = get_test_pipeline(cfg)
        self.model = model
        self.loader, self.transforms = split_test_pipeline(pipeline)
        self.stack_cfg = dict(score_thr=float(score_thr), link_iou=float(link_iou),
                              extend=int(extend), fuse_iou=float(fuse_iou))
        self.batch_size = int(batch_size)
        self.fp16 = bool(fp16)
        self.amp_dtype = amp_dtype
        self.channels_last = bool(channels_last)
        self.cross_volume = bool(cross_volume)
        self.open_volumes = int(open_volumes)
        self.pin_memory = pin_memory
        self.compile = bool(compile)
        self.strict = bool(strict)
        self._model_ready = False

    # ------------------------------------------------------------------ settings
    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter (CPU for a model without any)."""
        param = next(iter(self.model.parameters()), None)
        return torch.device('cpu') if param is None else param.device

    @property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        """The dtype the model runs under autocast, None for float32."""
        if self.amp_dtype is not None:
            return AMP_DTYPES[self.amp_dtype]
        if self.fp16:  # mmengine's autocast(): float16 on CUDA, bfloat16 on the CPU
            return torch.float16 if self.device.type == 'cuda' else torch.bfloat16
        return None

    @property
    def pins_memory(self) -> bool:
        """Whether inputs go to pinned host memory (``pin_memory``, default: model on CUDA)."""
        if self.pin_memory is None:
            return self.device.type == 'cuda'
        return bool(self.pin_memory) and torch.cuda.is_available()

    def _autocast(self):
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _prepare_model(self):
        """The unwrapped model, made ready once: channels-last weights, non-blocking copies of
        pinned inputs (the data preprocessor's ``.to(device, non_blocking=...)``)."""
        module = self.model.module if is_model_wrapper(self.model) else self.model
        if not self._model_ready:
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            if self.pins_memory and hasattr(module, 'data_preprocessor'):
                module.data_preprocessor._non_blocking = True
            if self.compile:
                # the network only: mmdet's pre- and post-processing stay eager (Python-heavy,
                # data-dependent shapes)
                for name in ('backbone', 'neck', 'bbox_head'):
                    part = getattr(module, name, None)
                    if isinstance(part, torch.nn.Module):
                        part.compile()
            self._model_ready = True
        return module

    # ------------------------------------------------------------------ data
    def inputs(self, volumes: Sequence[Union[VolumeInfo, ArrayVolume]],
               image_root: Optional[str] = None, cache_volumes: int = 1) -> VolumeScanInputs:
        """The dataset of prepared volumes (one item per volume) for these volumes."""
        return VolumeScanInputs(volumes, image_root, self.loader, self.transforms,
                                cache_volumes=cache_volumes, strict=self.strict)

    def dataloader(self, inputs: VolumeScanInputs, num_workers: int = 0) -> DataLoader:
        """Volumes prepared in ``num_workers`` worker processes (0: in this process) while the
        model runs: one item per volume, all its slices in memory (~7 MB per 9-slice 448 px
        slice, so ~0.5 GB for a 60-slice volume; keep ``num_workers`` modest).  With
        :attr:`pins_memory`, the DataLoader's pinning thread copies each item's inputs into
        pinned memory while the model runs."""
        if int(num_workers) < 0:
            raise ValueError(f'num_workers must be >= 0, got {num_workers}')
        return DataLoader(inputs, batch_size=None, shuffle=False, num_workers=int(num_workers),
                          collate_fn=_identity, pin_memory=self.pins_memory)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def detect(self, packed: Sequence[dict]) -> List[np.ndarray]:
        """One forward pass over packed slices (``inputs``, ``data_samples``), any volumes.

        Returns:
            per slice, ``(n, 5) float64 [x1, y1, x2, y2, score]`` in the original slice frame
            (0-based px).
        """
        module = self._prepare_model()
        data = dict(inputs=[p['inputs'] for p in packed],
                    data_samples=[p['data_samples'] for p in packed])
        with self._autocast():
            if self.channels_last:
                # test_step with the batch tensor made NHWC between preprocessing and forward
                data = module.data_preprocessor(data, False)
                data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
                outputs = module._run_forward(data, mode='predict')
            else:
                outputs = self.model.test_step(data)
        dets = []
        for out in outputs:
            pred = out.pred_instances
            boxes = pred.bboxes.detach().float().cpu().numpy().reshape(-1, 4)
            scores = pred.scores.detach().float().cpu().numpy().reshape(-1, 1)
            dets.append(np.concatenate([boxes, scores], axis=1).astype(np.float64))
        return dets

    def _finish(self, item: dict, slice_dets: Dict[int, np.ndarray]) -> VolumePrediction:
        """Stack one volume's slice detections: its :class:`VolumePrediction`."""
        slices = item['slices']
        tracklets = stack_volume(slice_dets, item['image_size'], **self.stack_cfg) \
            if slices else []
        return VolumePrediction(volume=item['volume'], tracklets=tracklets,
                                slice_dets=slice_dets, image_size=item['image_size'],
                                num_slices=len(slices), num_decoded=int(item['num_decoded']),
                                bad_slices=list(item.get('bad_slices') or []),
                                error=item.get('error'))

    def predict_prepared(self, item: dict) -> VolumePrediction:
        """Detect on every slice of one prepared volume (a :class:`VolumeScanInputs` item),
        ``batch_size`` slices of it per pass, and stack the detections."""
        slices = item['slices']
        slice_dets: Dict[int, np.ndarray] = {}
        for start in range(0, len(slices), self.batch_size):
            chunk = slices[start:start + self.batch_size]
            for (z, _), dets in zip(chunk, self.detect([p for _, p in chunk])):
                slice_dets[z] = dets
        return self._finish(item, slice_dets)

    def predict_items(self, items: Iterable[dict]) -> Iterator[VolumePrediction]:
        """Predict prepared volumes (e.g. :meth:`dataloader`'s items), one
        :class:`VolumePrediction` each, in their order.

        Per volume (:meth:`predict_prepared`), or with ``cross_volume`` in passes of
        ``batch_size`` slices filled from consecutive volumes: slices wait in one queue per
        input shape, a full queue runs, and a volume is stacked and yielded as soon as it and
        every volume before it have all their detections.  When more than ``open_volumes``
        volumes wait, the oldest one's slices run in a smaller pass; at the end every queue
        runs.  Each slice's detections are the model's for that slice (no padding beyond its
        own volume's: the same to float tolerance; tests/test_apis/test_scan_gpu_path.py).
        """
        if not self.cross_volume:
            for item in items:
                yield self.predict_prepared(item)
            return
        waiting: Deque[_OpenVolume] = deque()
        queues: Dict[tuple, List[tuple]] = {}  # input shape -> [(volume, z, packed), ...]

        def run(key: tuple) -> None:
            queue = queues[key]
            batch, queues[key] = queue[:self.batch_size], queue[self.batch_size:]
            if not queues[key]:
                del queues[key]
            for (vol, z, _), dets in zip(batch, self.detect([p for _, _, p in batch])):
                vol.slice_dets[z] = dets

        def finished() -> Iterator[VolumePrediction]:
            while waiting and not waiting[0].left:
                done = waiting.popleft()
                yield self._finish(done.item, done.slice_dets)

        for item in items:
            vol = _OpenVolume(item, {})
            waiting.append(vol)
            for z, packed in item['slices']:
                inputs = packed['inputs']
                key = (tuple(inputs.shape), str(inputs.dtype))
                queues.setdefault(key, []).append((vol, z, packed))
                if len(queues[key]) == self.batch_size:
                    run(key)
            yield from finished()
            while len(waiting) > self.open_volumes:  # the oldest runs in a smaller pass
                oldest = waiting[0]
                run(next(k for k, q in queues.items() if any(v is oldest for v, _, _ in q)))
                yield from finished()
        while queues:  # the end: the queue holding the oldest waiting slice first
            run(min(queues, key=lambda k: _position(waiting, queues[k][0][0])))
            yield from finished()
        yield from finished()  # volumes without slices

    def predict(self, volumes: Sequence[Union[VolumeInfo, ArrayVolume]],
                image_root: Optional[str] = None,
                num_workers: int = 0) -> Iterator[VolumePrediction]:
        """Predict volumes in order, preparing them in ``num_workers`` processes."""
        inputs = self.inputs(volumes, image_root)
        yield from self.predict_items(self.dataloader(inputs, num_workers))


@dataclass
class _OpenVolume:
    """A prepared volume whose slices wait for cross-volume passes."""
    item: dict
    slice_dets: Dict[int, np.ndarray]

    @property
    def left(self) -> int:
        """Slices whose detections are still to come (a volume's slice indices are distinct)."""
        return len(self.item['slices']) - len(self.slice_dets)


def _position(waiting: Deque[_OpenVolume], vol: _OpenVolume) -> int:
    return next(i for i, v in enumerate(waiting) if v is vol)


def _resolve_volumes(volumes, image_root, series_info, spacing,
                     first_slice) -> List[Union[VolumeInfo, ArrayVolume]]:
    out, lacking = [], []
    for v in volumes:
        if isinstance(v, np.ndarray):
            out.append(_as_array_volume(v, spacing, first_slice))
            continue
        if isinstance(v, ArrayVolume):
            out.append(v)
            continue
        if isinstance(v, str):
            v = volume_info_from_key(v)
        elif isinstance(v, VolumeInfo):
            v = replace(v)  # spacing is filled in on a copy
        else:
            raise TypeError('a volume is a VolumeInfo, a key "PPPPPP_SS_RR_SSS-EEE" or a '
                            f'(Z, H, W) HU array, got {type(v).__name__}')
        if image_root is None:
            raise ValueError(f'volume {v.key}: image_root (the Images_png folder) is needed to '
                             'read DeepLesion slices')
        if not v.has_spacing and spacing is not None:
            v.spacing = [float(s) for s in spacing]
            v.slice_interval = float(spacing[2]) if len(spacing) > 2 else None
        out.append(v)
        lacking.append(v)
    series_sources = [series_info] if isinstance(series_info, str) else list(series_info or [])
    if image_root is not None and not series_sources:
        guess = osp.join(osp.dirname(osp.normpath(image_root)), 'DL_info.csv')
        if osp.isfile(guess):
            series_sources.append(guess)
    fill_spacing(lacking, series_sources, 'the requested volumes')
    return out


def predict_volumes(model, volumes: Sequence[Any], image_root: Optional[str] = None, *,
                    series_info: Union[str, Sequence[str], None] = None,
                    spacing: Optional[Sequence[float]] = None, first_slice: int = 0,
                    num_workers: int = 0, pipeline: Optional[Sequence] = None,
                    **predictor_kwargs) -> Iterator[VolumePrediction]:
    """Predict several volumes, one :class:`VolumePrediction` each, in the given order.

    Args:
        model: the detector (:func:`init_lesion_detector`).
        volumes: :class:`~mmlesion.structures.VolumeInfo` objects, sub-volume keys
            ``PPPPPP_SS_RR_SSS-EEE`` or ``(Z, H, W)`` HU arrays.
        image_root: DeepLesion's ``Images_png`` folder (for keys and VolumeInfo).
        series_info: where to look up spacing of volumes that lack it: ``DL_info.csv``, a
            converted JSON or a folder with either (default: ``DL_info.csv`` beside
            ``image_root``).
        spacing: ``(x, y, z)`` mm for array volumes (and volumes without spacing).
        first_slice: absolute index of an array volume's first slice.
        num_workers: processes preparing volumes while the model runs.
        pipeline, **predictor_kwargs: see :class:`VolumePredictor` (``score_thr``,
            ``batch_size``, ``link_iou``, ``extend``, ``fuse_iou``, ``fp16``, ``strict``).
    """
    predictor = VolumePredictor(model, pipeline, **predictor_kwargs)
    resolved = _resolve_volumes(volumes, image_root, series_info, spacing, first_slice)
    return predictor.predict(resolved, image_root, num_workers=num_workers)


def predict_volume(model, volume: Any, image_root: Optional[str] = None, *,
                   series_info: Union[str, Sequence[str], None] = None,
                   spacing: Optional[Sequence[float]] = None, first_slice: int = 0,
                   pipeline: Optional[Sequence] = None, **predictor_kwargs) -> List[Tracklet]:
    """Detect lesions in one CT sub-volume: every slice, stacked into 3D tracklets.

    Args:
        model: the detector (:func:`init_lesion_detector`).
        volume: a :class:`~mmlesion.structures.VolumeInfo`, a sub-volume key
            ``PPPPPP_SS_RR_SSS-EEE`` (slices read from ``image_root``), or a ``(Z, H, W)`` HU
            array (with ``spacing``).
        image_root, series_info, spacing, first_slice, pipeline, **predictor_kwargs: see
            :func:`predict_volumes`.

    Returns:
        the volume's tracklets, highest score first: absolute z, 0-based continuous-corner
        boxes ``[x1, y1, x2, y2, score]`` in the original slice frame (px).
    """
    (prediction, ) = predict_volumes(model, [volume], image_root, series_info=series_info,
                                     spacing=spacing, first_slice=first_slice,
                                     pipeline=pipeline, **predictor_kwargs)
    return prediction.tracklets
