"""Volume-wise inference: every slice of every sub-volume, stacked into 3D tracklets (SPEC §2.4).

``test_cfg = dict(type='VolumeScanTestLoop', score_thr=0.1, link_iou=0.8, batch_size=8)``
replaces mmengine's per-key-slice ``TestLoop``.  For each sub-volume of the annotation file
(its ``volumes`` list; a release pickle's keys):

1. all available slices are decoded once (:class:`~mmlesion.datasets.volume_reader.VolumeReader`)
   and every multi-slice window is built from memory, with the windowing and resampling settings
   of the test pipeline's ``LoadMultiSliceFromFile``;
2. the rest of the test pipeline (``RescaleToSpacing``, ``PackLesionInputs``; the loading
   transforms are skipped) turns each window into model inputs;
3. ``model.test_step`` runs on mini-batches of ``batch_size`` slices of one volume; mmdet's
   ``predict(rescale=True)`` divides the boxes by the metainfo ``scale_factor``, so they come back
   in the original slice frame (0-based pixels);
4. :func:`mmlesion.stacking.stack_volume` links them into tracklets (t_G = ``score_thr``,
   IoU > ``link_iou``, one-slice gap bridging with ``fuse_iou``);
5. one result per volume ``dict(volume_id, tracklets, image_size, slice_range, num_slices,
   gt_boxes_2d, gt_boxes_3d)`` goes to the evaluator (:class:`~mmlesion.evaluation.P3DMetric`,
   :class:`~mmlesion.evaluation.IoU3DMetric`).

Distributed: rank ``r`` of ``w`` scans the sorted volumes ``r::w``; the evaluator's collect merges
them on rank 0 (gloo on CPU, NCCL on GPUs).  Volumes are prepared in ``num_workers`` DataLoader
worker processes (one volume per item, all its slices in memory: ~7 MB per 9-slice 448 px slice,
so ~0.5 GB for a 60-slice volume; keep ``num_workers`` modest) while the model runs.

Progress is logged on rank 0 every ``log_interval`` volumes.  Per-iteration hooks are not called
(an iteration here is a volume, not a data batch); ``before/after_test(_epoch)`` are.
"""
import copy
import logging
import os
import os.path as osp
import time
from dataclasses import replace
from datetime import timedelta
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader, Dataset

from mmdet.registry import DATASETS, LOOPS, TRANSFORMS
from mmlesion.datasets.converters.annotation_release import load_series_info
from mmlesion.datasets.transforms.loading import LoadMultiSliceFromFile
from mmlesion.datasets.volume_reader import VolumeReader
from mmlesion.evaluation.metrics.annotation_set import (AnnotationSet, VolumeInfo,
                                                        load_annotation_set)
from mmlesion.evaluation.metrics.p3d_metric import VolumeFROCMetric
from mmlesion.stacking import stack_volume

__all__ = ['VolumeScanTestLoop', 'VolumeScanInputs', 'split_test_pipeline']

# transforms that read files: the scan replaces them by the volume reader (and the annotation set)
LOADING_TRANSFORMS = ('LoadMultiSliceFromFile', 'LoadLesionAnnotations', 'LoadAnnotations',
                      'LoadImageFromFile')


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
        raise ValueError('VolumeScanTestLoop needs a test pipeline with LoadMultiSliceFromFile '
                         f'(its window settings are reused); got {names}')
    return loader, rest


def _identity(item):
    return item


class VolumeScanInputs(Dataset):
    """Model inputs of whole sub-volumes: item ``i`` = every available slice of volume ``i``.

    Each item is ``dict(volume=VolumeInfo, slices=[(z, packed), ...], image_size=(W, H),
    num_decoded=int)``; ``packed`` is the output of the transforms (``inputs`` ``C x H' x W'``
    tensor and a ``DetDataSample``), ``z`` the absolute slice index, ``image_size`` the original
    slice size in px.

    Args:
        volumes: the sub-volumes (with spacing).
        image_root: folder of the series folders (``Images_png``).
        loader: the test pipeline's ``LoadMultiSliceFromFile`` (slices, interval, window).
        transforms: transforms applied to each window (resize, pack).
        cache_volumes: decoded volumes kept by the reader (1 lets overlays reuse the last one).
    """

    def __init__(self, volumes: Sequence[VolumeInfo], image_root: str,
                 loader: LoadMultiSliceFromFile, transforms: Sequence, cache_volumes: int = 1):
        self.volumes = list(volumes)
        self.image_root = image_root
        self.loader = loader
        self.transforms = list(transforms)
        self.reader = VolumeReader(image_root, max_volumes=cache_volumes,
                                   backend_args=loader.backend_args)

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> dict:
        vol = self.volumes[index]
        ld = self.loader
        before = self.reader.num_decoded
        slices, size = [], None
        windows = self.reader.iter_windows(
            vol.series, vol.slice_range, vol.slice_interval, num_slices=ld.num_slices,
            window_hu=ld.window_hu, out_range=ld.out_range, missing_slices=vol.missing_slices,
            target_interval_mm=ld.slice_interval_mm)
        for z, img in windows:
            if not ld.to_float32:
                img = np.round(img).astype(np.uint8)
            h, w = img.shape[:2]
            size = (w, h)
            results = dict(
                img=img, img_shape=(h, w), ori_shape=(h, w), height=h, width=w,
                num_slices=ld.num_slices, img_path=self.reader.slice_path(vol.series, z),
                img_id=f'{vol.key}/{z:03d}', volume_id=vol.key, series=vol.series,
                slice_index=int(z), slice_range=list(vol.slice_range), spacing=list(vol.spacing),
                slice_interval=vol.slice_interval, missing_slices=vol.missing_slices)
            for t in self.transforms:
                results = t(results)
                if results is None:
                    raise ValueError(f'{type(t).__name__} dropped slice {z} of {vol.key}: the '
                                     'volume scan needs every slice (no filtering transforms)')
            slices.append((int(z), results))
        return dict(volume=vol, slices=slices, image_size=size,
                    num_decoded=self.reader.num_decoded - before)


def _join(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if not path:
        return root
    if not root or osp.isabs(path) or '://' in path:
        return path
    return osp.join(root, path)


@LOOPS.register_module()
class VolumeScanTestLoop(BaseLoop):
    """Test loop that scans whole sub-volumes and evaluates 3D tracklets.

    Args:
        runner: the runner.
        dataloader: the test dataloader config (or a built DataLoader): only its dataset's
            ``data_root``, ``data_prefix['img']``, ``ann_file``, ``pipeline`` and type are used;
            no key-slice dataset is iterated.
        evaluator: per-volume metrics (``P3DMetric``, ``IoU3DMetric``).
        score_thr: t_G, keep slice detections scoring above it (0.1, the paper's harvesting
            value).
        link_iou: IoU a detection must exceed to extend a track (0.8).
        extend: slices of virtual extension for gap bridging (1).
        fuse_iou: overlap to fuse tracks across a gap (0.8).
        batch_size: slices per ``test_step`` (one volume per batch; the last may be smaller).
        ann_file: annotation file whose volumes are scanned (mmlesion JSON or LH / LENS pickle);
            None: the ``ann_file`` of the first P3D / 3D IoU metric, else the dataset's.
        ann_format, lens_subset: see :func:`~mmlesion.evaluation.metrics.load_annotation_set`.
        volumes: scan only these volume keys of the annotation set (None: all).
        series_info: where to look up pixel spacing and slice interval of volumes the annotation
            file does not describe (a release pickle): ``DL_info.csv``, a converted JSON or a
            folder with either.  Also tried: the dataset's JSON and ``<data_root>/DL_info.csv``.
        num_workers: DataLoader workers preparing volumes (0: in the main process).
        show_dir: write one overlay PNG per volume here (top tracklets and ground truth).
        show_max_tracklets: tracklets per overlay.
        log_interval: log progress every this many volumes (rank 0).
        fp16: autocast the model.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 score_thr: float = 0.1,
                 link_iou: float = 0.8,
                 extend: int = 1,
                 fuse_iou: float = 0.8,
                 batch_size: int = 8,
                 ann_file: Optional[str] = None,
                 ann_format: str = 'auto',
                 lens_subset: Optional[str] = None,
                 volumes: Optional[Sequence[str]] = None,
                 series_info: Optional[str] = None,
                 num_workers: int = 0,
                 show_dir: Optional[str] = None,
                 show_max_tracklets: int = 5,
                 log_interval: int = 10,
                 fp16: bool = False) -> None:
        self._runner = runner
        if int(batch_size) < 1:
            raise ValueError(f'VolumeScanTestLoop: batch_size must be >= 1, got {batch_size}')
        if int(num_workers) < 0:
            raise ValueError(f'VolumeScanTestLoop: num_workers must be >= 0, got {num_workers}')
        self.stack_cfg = dict(score_thr=float(score_thr), link_iou=float(link_iou),
                              extend=int(extend), fuse_iou=float(fuse_iou))
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.show_dir = show_dir
        self.show_max_tracklets = int(show_max_tracklets)
        self.log_interval = max(1, int(log_interval))
        self.fp16 = fp16
        self.series_info = series_info

        if isinstance(evaluator, (dict, list)):
            self.evaluator = runner.build_evaluator(evaluator)
        else:
            self.evaluator = evaluator

        ds = self._dataset_settings(dataloader)
        self.data_root = ds['data_root']
        self.image_root = ds['image_root']
        self.dataset_ann_file = ds['ann_file']
        if ds['metainfo'] is not None:
            self.evaluator.dataset_meta = ds['metainfo']
            runner.visualizer.dataset_meta = ds['metainfo']
        self.loader, self.transforms = split_test_pipeline(ds['pipeline'])

        metric_anns = [m.ann_file for m in getattr(self.evaluator, 'metrics', [])
                       if isinstance(m, VolumeFROCMetric) and m.ann_file]
        self.ann_file = ann_file or (metric_anns[0] if metric_anns else self.dataset_ann_file)
        if self.ann_file is None:
            raise ValueError('VolumeScanTestLoop: no annotation file (set test_cfg.ann_file or '
                             'the test dataset\'s ann_file)')
        ann = load_annotation_set(self.ann_file, ann_format, lens_subset)
        if volumes is not None:
            ann = ann.subset(list(volumes))
        self.annotation_set: AnnotationSet = ann
        self.all_volumes = [replace(v) for v in ann.volumes.values()]
        self._fill_spacing(self.all_volumes)
        self._check_series_folders(self.all_volumes)

        self.rank, self.world_size = get_dist_info()
        self.shard = self.all_volumes[self.rank::self.world_size]
        self.inputs = VolumeScanInputs(self.shard, self.image_root, self.loader, self.transforms,
                                       cache_volumes=1)
        # the loop's "dataloader": one item per volume of this rank (hooks read its length)
        self.dataloader = DataLoader(self.inputs, batch_size=None, shuffle=False,
                                     num_workers=self.num_workers, collate_fn=_identity)
        self.num_decoded = 0
        self.num_slices = 0

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _dataset_settings(dataloader) -> dict:
        if isinstance(dataloader, dict):
            cfg = dataloader.get('dataset')
            if cfg is None:
                raise ValueError('VolumeScanTestLoop: test_dataloader has no dataset')
            while 'dataset' in cfg:  # dataset wrappers
                cfg = cfg['dataset']
            data_root = cfg.get('data_root') or None
            prefix = (cfg.get('data_prefix') or {})
            img_prefix = prefix.get('img', prefix.get('img_path', ''))
            ds_type = cfg.get('type')
            cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
            metainfo = copy.deepcopy(getattr(cls, 'METAINFO', None)) if cls else None
            if cfg.get('metainfo'):
                metainfo = dict(metainfo or {}, **cfg['metainfo'])
            return dict(data_root=data_root, image_root=_join(data_root, img_prefix),
                        ann_file=_join(data_root, cfg.get('ann_file')),
                        pipeline=cfg.get('pipeline') or [], metainfo=metainfo)
        dataset = getattr(dataloader, 'dataset', None)
        while hasattr(dataset, 'dataset'):
            dataset = dataset.dataset
        if dataset is None:
            raise TypeError(f'VolumeScanTestLoop: cannot read a dataset from {dataloader!r}')
        prefix = getattr(dataset, 'data_prefix', {}) or {}
        return dict(data_root=getattr(dataset, 'data_root', None),
                    image_root=prefix.get('img', prefix.get('img_path', '')),
                    ann_file=getattr(dataset, 'ann_file', None),
                    pipeline=dataset.pipeline.transforms, metainfo=dataset.metainfo)

    def _fill_spacing(self, volumes: List[VolumeInfo]) -> None:
        """Pixel spacing / slice interval for volumes the annotation file does not describe."""
        lacking = [v for v in volumes if not v.has_spacing]
        if not lacking:
            return
        sources = []
        if self.series_info:
            sources.append(self.series_info)
        ds_ann = self.dataset_ann_file
        if ds_ann and ds_ann != self.ann_file and ds_ann.lower().endswith('.json') \
                and osp.isfile(ds_ann):
            sources.append(ds_ann)
        if self.data_root and osp.isfile(osp.join(self.data_root, 'DL_info.csv')):
            sources.append(osp.join(self.data_root, 'DL_info.csv'))
        for src in sources:
            info = load_series_info(src)
            for v in lacking:
                s = info.get(v.series)
                if v.has_spacing or s is None or s.get('spacing') is None:
                    continue
                v.spacing = [None if x is None else float(x) for x in s['spacing']]
                interval = s.get('slice_interval')
                v.slice_interval = None if interval is None else float(interval)
            lacking = [v for v in lacking if not v.has_spacing]
            if not lacking:
                return
        raise ValueError(
            f'VolumeScanTestLoop: no pixel spacing for {len(lacking)} volume(s) of '
            f'{self.ann_file}, e.g. {[v.key for v in lacking[:3]]}; looked in '
            f'{sources or "nothing"}. Give test_cfg.series_info = DL_info.csv or a converted '
            'JSON covering their series (RescaleToSpacing needs mm/px)')

    def _check_series_folders(self, volumes: List[VolumeInfo]) -> None:
        if self.loader.backend_args is not None or '://' in str(self.image_root):
            return  # remote storage: missing files surface when read
        missing = sorted({v.series for v in volumes
                          if not osp.isdir(osp.join(self.image_root or '', v.series))})
        if missing:
            raise FileNotFoundError(
                f'VolumeScanTestLoop: {len(missing)} series folder(s) of {self.ann_file} are '
                f'not under the image root {self.image_root!r}, e.g. {missing[:5]}')

    # ------------------------------------------------------------------ scanning
    @torch.no_grad()
    def scan_item(self, item: dict) -> dict:
        """Detect on every slice of one prepared volume and stack the detections.

        Returns:
            the per-volume result passed to the evaluator; ``slice_dets`` (``{z: (n, 5)}``,
            original frame) is included for callers and removed before evaluation.
        """
        vol: VolumeInfo = item['volume']
        slices = item['slices']
        slice_dets: Dict[int, np.ndarray] = {}
        for start in range(0, len(slices), self.batch_size):
            chunk = slices[start:start + self.batch_size]
            data = dict(inputs=[p['inputs'] for _, p in chunk],
                        data_samples=[p['data_samples'] for _, p in chunk])
            with autocast(enabled=self.fp16):
                outputs = self.runner.model.test_step(data)
            for (z, _), out in zip(chunk, outputs):
                pred = out.pred_instances
                boxes = pred.bboxes.detach().float().cpu().numpy().reshape(-1, 4)
                scores = pred.scores.detach().float().cpu().numpy().reshape(-1, 1)
                slice_dets[z] = np.concatenate([boxes, scores], axis=1).astype(np.float64)
        tracklets = stack_volume(slice_dets, item['image_size'], **self.stack_cfg) \
            if slices else []
        ann = self.annotation_set
        result = dict(volume_id=vol.key, tracklets=tracklets, image_size=item['image_size'],
                      slice_range=tuple(vol.slice_range), num_slices=len(slices),
                      gt_boxes_2d=ann.boxes_2d.get(vol.key),
                      slice_dets=slice_dets)
        if ann.boxes_3d is not None:
            result['gt_boxes_3d'] = ann.boxes_3d.get(vol.key)
        return result

    def _show(self, vol: VolumeInfo, result: dict) -> None:
        from mmlesion.visualization.overlays import save_volume_overlay
        w, h = result['image_size']
        blank = np.full((h, w), -1024.0, dtype=np.float32)  # a slice without PNG shows as air
        if self.num_workers == 0:  # the reader still caches this volume: no second decode
            volume = self.inputs.reader.get_volume(vol.series, vol.slice_range,
                                                   vol.missing_slices)

            def get_slice(z):
                return volume.get(z, blank)
        else:
            reader = VolumeReader(self.image_root, max_volumes=0,
                                  backend_args=self.loader.backend_args)

            def get_slice(z):
                try:
                    return reader.read_slice(vol.series, z)
                except FileNotFoundError:
                    return blank
        save_volume_overlay(
            osp.join(self.show_dir, f'{vol.key}.png'), get_slice, result['tracklets'],
            result.get('gt_boxes_2d'), max_tracklets=self.show_max_tracklets,
            title=f'{vol.key}: {len(result["tracklets"])} tracklets (score > '
            f'{self.stack_cfg["score_thr"]:g}), GT green')

    def run(self) -> dict:
        """Scan this rank's volumes, then evaluate (merged on rank 0)."""
        runner = self.runner
        runner.call_hook('before_test')
        runner.call_hook('before_test_epoch')
        runner.model.eval()
        if self.show_dir:
            os.makedirs(self.show_dir, exist_ok=True)
        n_total, n_mine = len(self.all_volumes), len(self.shard)
        runner.logger.info(
            f'VolumeScan: {n_total} volumes of {self.ann_file} '
            f'({self.annotation_set.num_boxes} lesion boxes); rank {self.rank}/{self.world_size} '
            f'scans {n_mine}; t_G={self.stack_cfg["score_thr"]:g}, '
            f'link IoU>{self.stack_cfg["link_iou"]:g}, batch {self.batch_size}, '
            f'{self.loader.num_slices}-slice input, workers {self.num_workers}')
        incomplete = self.annotation_set.incomplete_volumes()
        if incomplete and self.rank == 0:
            print_log(f'VolumeScan: {len(incomplete)} of {n_total} volumes of {self.ann_file} '
                      'are not completely annotated (complete: false): P3D counts their '
                      'unmarked lesions as false positives; evaluate on a complete set '
                      '(e.g. Revised-Test1071.pkl) for the paper\'s numbers',
                      logger='current', level=logging.WARNING)
        t0 = time.time()
        n_trk = 0
        for i, item in enumerate(self.dataloader):
            result = self.scan_item(item)
            self.num_decoded += int(item['num_decoded'])
            self.num_slices += result['num_slices']
            n_trk += len(result['tracklets'])
            if self.show_dir and result['num_slices']:
                self._show(item['volume'], result)
            result.pop('slice_dets')
            self.evaluator.process(data_samples=[result], data_batch=None)
            if self.rank == 0 and ((i + 1) % self.log_interval == 0 or i + 1 == n_mine):
                elapsed = time.time() - t0
                eta = elapsed / (i + 1) * (n_mine - i - 1)
                runner.logger.info(
                    f'VolumeScan [{i + 1}/{n_mine}] {result["volume_id"]}: '
                    f'{result["num_slices"]} slices, {len(result["tracklets"])} tracklets; '
                    f'{self.num_slices / max(elapsed, 1e-9):.1f} slices/s, '
                    f'eta {timedelta(seconds=int(eta))}')
        if self.rank == 0:
            runner.logger.info(
                f'VolumeScan: rank 0 scanned {n_mine} volumes, {self.num_slices} slices '
                f'({self.num_decoded} PNG decodes), {n_trk} tracklets in '
                f'{time.time() - t0:.1f} s')
        if n_mine == 0:
            print_log(f'VolumeScan: rank {self.rank} has no volume to scan '
                      f'({n_total} volumes over {self.world_size} ranks)', logger='current',
                      level=logging.WARNING)
        metrics = self.evaluator.evaluate(n_total)
        runner.call_hook('after_test_epoch', metrics=metrics)
        runner.call_hook('after_test')
        return metrics
