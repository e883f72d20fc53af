"""Patches of 3D lesion proposals as an mmengine dataset, for training and testing the LPC.

One item per proposal of a proposal file (:class:`~mmlesion.structures.ProposalSet`,
docs/proposals.md): its label (1 lesion, 0 not, -1 unknown), its ``s_g``, and its patches cut
from the DeepLesion PNGs (:mod:`mmlesion.datasets.lpc_patches`): ``mode='views'`` gives the
axial / coronal / sagittal planes (``views``), ``mode='cube'`` the 3D sub-volume.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmdet.registry import DATASETS
from mmlesion.structures.proposals import LABEL_NEGATIVE, LABEL_POSITIVE, ProposalSet

from . import lpc_patches as lp
from . import slice_sampling as ss
from .transforms import lpc as _lpc_transforms  # noqa: F401  (registers the LPC transforms)
from .volume_reader import VolumeReader

__all__ = ['ProposalPatchDataset']

MISSING_VOLUME_MODES = ('error', 'skip')


@DATASETS.register_module()
class ProposalPatchDataset(BaseDataset):
    """Proposals of a proposal file with their patches.

    Data info of each proposal: ``key``, ``series``, ``slice_range``, ``missing_slices``,
    ``spacing`` ``[x, y, z]`` mm, ``slice_interval`` mm, ``index`` (in its volume), ``z``
    (absolute), ``boxes`` ``(n, 5)`` (0-based px), ``s_g``, ``best_z``, ``label``.  Items are
    ordered by volume key, then index, so with a sequential sampler (testing) the proposals of a
    volume come together and its PNGs are decoded once per worker (a per-worker
    :class:`VolumeReader` LRU cache of ``cache_volumes`` decoded sub-volumes).

    ``results`` passed to the pipeline: the data info plus ``img`` (``(V, H, W)`` views or
    ``(D, H, W)`` cube, float32, windowed), ``patch_axes``, ``mode`` and ``views``.

    Args:
        ann_file: the proposal file (joined to ``data_root`` when relative, as mmengine does).
        data_prefix: ``dict(img=...)``, the folder of the series folders (``Images_png``).
        series_info: ``DL_info.csv`` or converted JSONs (or folders with them) giving the
            spacing of volumes the proposal file lacks it for (default: ``DL_info.csv`` beside
            the image folder, if present).
        mode: ``'views'`` (2D LPCs) or ``'cube'`` (3D LPC).
        views: the views, in order (``('axial', 'coronal', 'sagittal')``; ``('axial', )`` for
            the axial LPC).
        patch_size: output size of each view (int) or of the cube (int or ``(D, H, W)``).
        pad_px: margin around the proposal, px (64 in the paper).
        keep_aspect: square views / cube (see :mod:`mmlesion.datasets.lpc_patches`).
        window_hu: HU window of the patches (the LPG's, ``(-1024, 3071)``), or a composite.
        out_range: window output range.
        unknown_interval_mm: slice interval used when the series' is 0 or unknown.
        missing_volumes: ``'error'`` (default): a volume whose series folder is not under the
            image folder raises FileNotFoundError naming it and the proposal file; ``'skip'``
            drops its proposals with a warning.
        cache_volumes: decoded sub-volumes kept per worker.
        cache_patches: patches kept per worker (0: none), as float16 (a 3 x 64 x 64 views patch
            takes 24 KiB); epochs after the first then skip the decoding (patches are cut
            before augmentation).
        filter_cfg: ``dict(drop_unknown=True)`` drops proposals of unknown label (-1): the
            training set of the LPC holds positives and negatives only.
        Other arguments as :class:`mmengine.dataset.BaseDataset`.

    Raises (at construction):
        FileNotFoundError / ValueError: a missing, empty, truncated or malformed proposal file,
            no proposal left (naming the file), volumes without spacing.
    """

    METAINFO = dict(classes=('lesion', ))

    def __init__(self, ann_file: str = '', *, data_prefix: Optional[dict] = None,
                 series_info: Union[str, Sequence[str], None] = None, mode: str = 'views',
                 views: Sequence[str] = lp.VIEWS,
                 patch_size: Union[int, Tuple[int, ...]] = 224,
                 pad_px: float = lp.PAPER_PAD_PX, keep_aspect: bool = True,
                 window_hu: Optional[ss.WindowSpec] = ss.DEFAULT_WINDOW_HU,
                 out_range: Tuple[float, float] = ss.DEFAULT_OUT_RANGE,
                 unknown_interval_mm: float = lp.DEFAULT_UNKNOWN_INTERVAL_MM,
                 missing_volumes: str = 'error', cache_volumes: int = 2,
                 cache_patches: int = 0, backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        if mode not in ('views', 'cube'):
            raise ValueError(f"mode must be 'views' or 'cube', got {mode!r}")
        bad = [v for v in views if v not in lp.VIEWS]
        if bad or not views:
            raise ValueError(f'views must be a non-empty subset of {lp.VIEWS}, got {views!r}')
        if missing_volumes not in MISSING_VOLUME_MODES:
            raise ValueError(f'missing_volumes must be one of {MISSING_VOLUME_MODES}, got '
                             f'{missing_volumes!r}')
        self.series_info = series_info
        self.mode = mode
        self.views = tuple(views)
        self.patch_size = patch_size if isinstance(patch_size, int) else tuple(patch_size)
        self.pad_px = float(pad_px)
        self.keep_aspect = bool(keep_aspect)
        self.window_hu = window_hu
        self.out_range = tuple(out_range)
        self.unknown_interval_mm = float(unknown_interval_mm)
        self.missing_volumes = missing_volumes
        self.cache_volumes = int(cache_volumes)
        self.cache_patches = int(cache_patches)
        self.backend_args = backend_args
        self._reader: Optional[VolumeReader] = None
        self._reader_pid: Optional[int] = None
        self._patches: 'OrderedDict[tuple, np.ndarray]' = OrderedDict()
        super().__init__(ann_file=ann_file,
                         data_prefix=dict(img='') if data_prefix is None else data_prefix,
                         **kwargs)

    # ------------------------------------------------------------------ loading
    @property
    def image_root(self) -> str:
        return self.data_prefix.get('img', self.data_prefix.get('img_path', ''))

    def _series_sources(self) -> List[str]:
        src = self.series_info
        sources = [src] if isinstance(src, str) else list(src or [])
        sources = [s if osp.isabs(s) or not self.data_root else osp.join(self.data_root, s)
                   for s in sources]
        if not sources and self.image_root:
            guess = osp.join(osp.dirname(osp.normpath(self.image_root)), 'DL_info.csv')
            if osp.isfile(guess):
                sources.append(guess)
        return sources

    def load_data_list(self) -> List[dict]:
        pset = ProposalSet.load(self.ann_file)
        if len(pset) == 0:
            raise ValueError(f'{self.ann_file}: the proposal file has no proposal '
                             f'({len(pset.volumes)} volume(s) scanned, none with a proposal)')
        groups = pset.by_volume()
        volumes = [v for k, v in pset.volumes.items() if groups[k]]
        volumes = self._drop_missing(volumes)
        from mmlesion.apis.inference import fill_spacing  # lazy: apis imports datasets
        fill_spacing(volumes, self._series_sources(), f'the proposal file {self.ann_file}')
        data_list = []
        for v in volumes:
            for p in groups[v.key]:
                t = p.tracklet
                data_list.append(dict(
                    key=v.key, series=v.series, slice_range=list(v.slice_range),
                    missing_slices=v.missing_slices, spacing=list(v.spacing),
                    slice_interval=v.slice_interval, index=p.index, z=t.z.copy(),
                    boxes=t.boxes.copy(), s_g=p.s_g, best_z=p.best_z, label=int(p.label)))
        return data_list

    def _drop_missing(self, volumes: list) -> list:
        if self.backend_args is not None or '://' in str(self.image_root):
            return volumes  # remote storage: missing files surface when read
        missing = [v for v in volumes if not osp.isdir(osp.join(self.image_root, v.series))]
        if not missing:
            return volumes
        names = [f'{v.key} ({v.series})' for v in missing[:5]]
        if self.missing_volumes == 'error':
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} volume(s) of the proposal file have no series '
                f'folder under {self.image_root!r}, e.g. {names} (missing_volumes="skip" drops '
                'their proposals)')
        print_log(f'{self.ann_file}: skipping the proposals of {len(missing)} volume(s) whose '
                  f'series folder is not under {self.image_root!r}, e.g. {names}',
                  logger='current', level=30)
        keep = {v.key for v in missing}
        return [v for v in volumes if v.key not in keep]

    def filter_data(self) -> List[dict]:
        cfg = self.filter_cfg or {}
        unknown_keys = set(cfg) - {'drop_unknown'}
        if unknown_keys:
            raise ValueError(f'filter_cfg: unknown keys {sorted(unknown_keys)} (only '
                             '"drop_unknown")')
        data = self.data_list
        if cfg.get('drop_unknown', False):
            data = [d for d in data if d['label'] in (LABEL_POSITIVE, LABEL_NEGATIVE)]
            if not data:
                raise ValueError(f'{self.ann_file}: no proposal with a known label (1 or 0) to '
                                 'train on; was the file labelled (scan_proposals '
                                 '--label-complete / --label-recist)?')
        return data

    # ------------------------------------------------------------------ patches
    @property
    def reader(self) -> VolumeReader:
        """This process's volume reader (a new one in each data-loader worker)."""
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader = VolumeReader(self.image_root, max_volumes=self.cache_volumes,
                                        backend_args=self.backend_args)
            self._reader_pid = os.getpid()
            self._patches = OrderedDict()
        return self._reader

    def _cut(self, info: dict) -> np.ndarray:
        reader = self.reader
        try:
            volume = reader.get_volume(info['series'], info['slice_range'],
                                       info['missing_slices'])
        except FileNotFoundError as e:
            raise FileNotFoundError(f'{self.ann_file}: volume {info["key"]}: {e}') from None
        region = lp.proposal_region(info['z'], info['boxes'], info['spacing'][0],
                                    info['slice_interval'], self.pad_px,
                                    self.unknown_interval_mm)
        if self.mode == 'views':
            return lp.extract_views(volume, region, self.views, self.patch_size,
                                    self.keep_aspect, self.window_hu, self.out_range)
        return lp.extract_cube(volume, region, self.patch_size, self.keep_aspect,
                               self.window_hu, self.out_range)

    def get_patch(self, info: dict) -> np.ndarray:
        """The patches of a data info, from the per-worker caches when present."""
        key = (info['key'], info['index'])
        _ = self.reader  # resets the caches in a new worker process
        if key in self._patches:
            self._patches.move_to_end(key)
            return self._patches[key].astype(np.float32)
        patch = self._cut(info)
        if self.cache_patches > 0:  # float16: 0..255 kept to 1/8 of a level, half the memory
            self._patches[key] = patch.astype(np.float16)
            while len(self._patches) > self.cache_patches:
                self._patches.popitem(last=False)
        return patch

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        info['img'] = self.get_patch(info)
        info['mode'] = self.mode
        info['views'] = self.views if self.mode == 'views' else ()
        info['patch_axes'] = lp.patch_axes(self.mode, self.views)
        return self.pipeline(info)

    def get_cat_ids(self, idx: int) -> List[int]:
        return [0] if self.get_data_info(idx)['label'] == LABEL_POSITIVE else []
