"""The volume-scan test loop: every slice of every sub-volume, stacked into 3D tracklets.

``test_cfg = dict(type='VolumeScanTestLoop', score_thr=0.1, link_iou=0.8, batch_size=8)``
replaces mmengine's per-key-slice ``TestLoop``.  The loop only iterates the sub-volumes of the
annotation file (its ``volumes`` list; a release pickle's keys), shards them over ranks and feeds
the evaluator; predicting a volume is :class:`mmlesion.apis.VolumePredictor`, the same path as
:func:`mmlesion.apis.predict_volume` (docs/method.md#stacking).  One result per volume
``dict(volume_id, tracklets, image_size, slice_range, num_slices, gt_boxes_2d, gt_boxes_3d)``
goes to the evaluator (:class:`~mmlesion.evaluation.P3DMetric`,
:class:`~mmlesion.evaluation.IoU3DMetric`).

Distributed: rank ``r`` of ``w`` scans the sorted volumes ``r::w``; the evaluator's collect merges
them on rank 0 (gloo on CPU, NCCL on GPUs).  Volumes are prepared in ``num_workers`` DataLoader
worker processes while the model runs.

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
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from mmdet.registry import DATASETS, LOOPS
from mmlesion.apis.inference import (
    VolumePrediction,
    VolumePredictor,
    check_series_folders,
    fill_spacing,
)
from mmlesion.apis.scan_records import ScanRecords, scan_fingerprint
from mmlesion.datasets.volume_reader import VolumeReader
from mmlesion.evaluation.annotation_set import load_annotation_set
from mmlesion.evaluation.metrics.p3d_metric import VolumeFROCMetric
from mmlesion.structures.volume import AnnotationSet, VolumeInfo

__all__ = ['VolumeScanTestLoop']


def _join(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if not path:
        return root
    if not root or osp.isabs(path) or '://' in path:
        return path
    return osp.join(root, path)


def _precision(predictor: VolumePredictor) -> str:
    """The scan's numerics in words, for the log."""
    dtype = predictor.autocast_dtype
    words = ['float32' if dtype is None else f'autocast {str(dtype).replace("torch.", "")}']
    if predictor.channels_last:
        words.append('channels last')
    if predictor.compile:
        words.append('torch.compile')
    if predictor.pins_memory:
        words.append('pinned inputs')
    return ', '.join(words)


@LOOPS.register_module()
class VolumeScanTestLoop(BaseLoop):
    """Test loop that scans whole sub-volumes and evaluates 3D tracklets.

    Args:
        runner: the runner.
        dataloader: the test dataloader config (or a built DataLoader): only its dataset's
            ``data_root``, ``data_prefix['img']``, ``ann_file``, ``pipeline`` and type are used;
            no key-slice dataset is iterated.
        evaluator: per-volume metrics (``P3DMetric``, ``IoU3DMetric``).
        score_thr, link_iou, extend, fuse_iou, batch_size, fp16: prediction and stacking, see
            :class:`mmlesion.apis.VolumePredictor`.
        amp_dtype, channels_last, cross_volume, open_volumes, pin_memory, compile: the GPU
            path, all off by default (pinned memory: on when the model is on CUDA) -- autocast
            in ``'bf16'`` or ``'fp16'``, channels-last weights and inputs, forward passes filled
            from consecutive volumes, torch.compile of the network; see
            :class:`mmlesion.apis.VolumePredictor` and docs/method.md#scan-gpu.
        ann_file: annotation file whose volumes are scanned (mmlesion JSON or LH / LENS pickle);
            None: the ``ann_file`` of the first P3D / 3D IoU metric, else the dataset's.
        ann_format, lens_subset: see :func:`~mmlesion.evaluation.load_annotation_set`.
        volumes: scan only these volume keys of the annotation set (None: all).
        series_info: where to look up pixel spacing and slice interval of volumes the annotation
            file does not describe (a release pickle): ``DL_info.csv``, a converted JSON or a
            folder with either.  Also tried: the dataset's JSON and ``<data_root>/DL_info.csv``.
        num_workers: DataLoader workers preparing volumes (0: in the main process).
        show_dir: write one overlay PNG per volume here (top tracklets and ground truth).
        show_max_tracklets: tracklets per overlay.
        log_interval: log progress every this many volumes (rank 0).
        resume: write each finished volume to ``<work_dir>/volume_scan/<fingerprint>/`` at once
            and, on a rerun with the same weights and settings, load the volumes found there
            instead of scanning them again (:mod:`mmlesion.apis.scan_records`).  False: scan
            everything and write nothing.
        strict: False (default): an unreadable or odd-sized slice is treated as a missing slice
            and a volume whose series folder is missing or holds no readable slice fails alone;
            all are named in the log and in the summary.  True: the first such file ends the
            run.
        rescore: the second stage of the two-stage false-positive reduction
            (docs/method.md#fpr3d): ``dict(config=LPC config, checkpoint=its weights,
            batch_size=32, cfg_options=None, trust_checkpoint=False)``.  Every tracklet of every
            volume is then re-scored once by that classifier, ``s = s_g * s_c``, boxes kept
            (:class:`mmlesion.apis.false_positive_reduction.TrackletRescorer`); the metrics and
            ``--out`` get the re-scored tracklets.  The scan records (``resume``) keep the
            screening stage's tracklets, so a changed classifier reuses them.  None: off.
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
                 fp16: bool = False,
                 amp_dtype: Optional[str] = None,
                 channels_last: bool = False,
                 cross_volume: bool = False,
                 open_volumes: int = 4,
                 pin_memory: Optional[bool] = None,
                 compile: bool = False,
                 resume: bool = True,
                 strict: bool = False,
                 rescore: Optional[dict] = None) -> None:
        self._runner = runner
        self.resume = bool(resume)
        self.strict = bool(strict)
        if int(num_workers) < 0:
            raise ValueError(f'VolumeScanTestLoop: num_workers must be >= 0, got {num_workers}')
        self.num_workers = int(num_workers)
        self.show_dir = show_dir
        self.show_max_tracklets = int(show_max_tracklets)
        self.log_interval = max(1, int(log_interval))
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
        try:
            self.predictor = VolumePredictor(
                runner.model, ds['pipeline'], score_thr=score_thr, link_iou=link_iou,
                extend=extend, fuse_iou=fuse_iou, batch_size=batch_size, fp16=fp16,
                amp_dtype=amp_dtype, channels_last=channels_last, cross_volume=cross_volume,
                open_volumes=open_volumes, pin_memory=pin_memory, compile=compile,
                strict=strict)
        except ValueError as e:
            raise ValueError(f'VolumeScanTestLoop: {e}') from None
        self.loader = self.predictor.loader

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
        # volumes that cannot be scanned: {key: reason}; with strict, an error here instead
        self.failed: Dict[str, str] = self._check_series_folders(self.all_volumes)

        self.rank, self.world_size = get_dist_info()
        self.shard = [v for v in self.all_volumes[self.rank::self.world_size]
                      if v.key not in self.failed]
        self.inputs = self.predictor.inputs(self.shard, self.image_root, cache_volumes=1)
        # the loop's "dataloader": one item per volume of this rank (hooks read its length)
        self.dataloader: DataLoader = self.predictor.dataloader(self.inputs, self.num_workers)
        self.num_decoded = 0
        self.num_slices = 0
        self.bad_slices: List[tuple] = []
        self.records_dir: Optional[str] = None
        self.rescorer = None if rescore is None else self._build_rescorer(dict(rescore))
        self._rescore_reader: Optional[VolumeReader] = None

    def _build_rescorer(self, rescore: dict):
        from mmlesion.apis.false_positive_reduction import TrackletRescorer
        unknown = set(rescore) - {'config', 'checkpoint', 'batch_size', 'cfg_options',
                                  'trust_checkpoint'}
        if unknown or not rescore.get('config'):
            raise ValueError('VolumeScanTestLoop: rescore must be dict(config=LPC config, '
                             'checkpoint=..., batch_size=..., cfg_options=..., '
                             f'trust_checkpoint=...), got {rescore}')
        from mmlesion.utils.locations import resolve_config
        ckpt = rescore.get('checkpoint')
        if ckpt is not None and not osp.isfile(ckpt):
            raise FileNotFoundError(f'VolumeScanTestLoop: rescore checkpoint not found: {ckpt} '
                                    '(train the classifier first, docs/method.md#fpr3d)')
        rescorer = TrackletRescorer.from_config(
            resolve_config(rescore['config']), ckpt, device=str(self.predictor.device),
            cfg_options=rescore.get('cfg_options'),
            trust_checkpoint=bool(rescore.get('trust_checkpoint', False)),
            batch_size=int(rescore.get('batch_size', 32)))
        # the default scope of the classifier's config may differ; the detector's is restored
        init_default_scope(self.runner.cfg.get('default_scope', 'mmdet'))
        return rescorer

    def _rescored(self, pred: VolumePrediction) -> list:
        """Stage 2 on one volume: its tracklets re-scored by the classifier (one decode of the
        volume's PNGs, kept until the next volume)."""
        if not pred.tracklets:
            return list(pred.tracklets)
        vol = pred.volume
        if self._rescore_reader is None:
            self._rescore_reader = VolumeReader(self.image_root, max_volumes=1,
                                                backend_args=self.loader.backend_args)
        hu = self._rescore_reader.get_volume(vol.series, vol.slice_range, vol.missing_slices)
        spacing = vol.spacing
        return self.rescorer(hu, pred.tracklets, float(spacing[0]), vol.slice_interval)

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
        """Pixel spacing / slice interval for volumes the annotation file does not describe:
        ``series_info``, then the dataset's JSON, then ``<data_root>/DL_info.csv``."""
        sources = []
        if self.series_info:
            sources.append(self.series_info)
        ds_ann = self.dataset_ann_file
        if ds_ann and ds_ann != self.ann_file and ds_ann.lower().endswith('.json') \
                and osp.isfile(ds_ann):
            sources.append(ds_ann)
        if self.data_root and osp.isfile(osp.join(self.data_root, 'DL_info.csv')):
            sources.append(osp.join(self.data_root, 'DL_info.csv'))
        try:
            fill_spacing(volumes, sources, what=self.ann_file, option='test_cfg.series_info')
        except ValueError as e:
            raise ValueError(f'VolumeScanTestLoop: {e}') from None

    def _check_series_folders(self, volumes: List[VolumeInfo]) -> Dict[str, str]:
        """``{key: reason}`` of the volumes whose series folder is missing (strict: raise)."""
        try:
            check_series_folders(volumes, self.image_root, what=self.ann_file,
                                 backend_args=self.loader.backend_args)
        except FileNotFoundError as e:
            if self.strict:
                raise FileNotFoundError(f'VolumeScanTestLoop: {e}') from None
            return {v.key: f'series folder {osp.join(self.image_root or "", v.series)} not found'
                    for v in volumes
                    if not osp.isdir(osp.join(self.image_root or '', v.series))}
        return {}

    def _records(self) -> ScanRecords:
        """This scan's records (same weights and settings -> same folder; see
        :func:`mmlesion.apis.scan_records.scan_fingerprint`)."""
        fingerprint = scan_fingerprint(self.runner.model, self.predictor,
                                       self.runner.cfg.get('model'))
        return ScanRecords(osp.join(self.runner.work_dir, 'volume_scan'), fingerprint)

    def _report_problems(self, bad_slices: List[tuple]) -> None:
        """The summary of what could not be read, on every rank that met it."""
        mine = {k: r for k, r in self.failed.items()
                if k in {v.key for v in self.all_volumes[self.rank::self.world_size]}}
        if not bad_slices and not mine:
            return
        lines = [f'VolumeScan summary (rank {self.rank}): {len(bad_slices)} unreadable slice(s) '
                 f'treated as missing, {len(mine)} volume(s) not scanned (they count as volumes '
                 'without detections; fix the files and rerun: finished volumes are resumed)']
        lines += [f'  slice  {path}: {reason}' for path, reason in bad_slices[:20]]
        if len(bad_slices) > 20:
            lines.append(f'  ... and {len(bad_slices) - 20} more slices')
        lines += [f'  volume {key}: {reason}' for key, reason in list(mine.items())[:20]]
        print_log('\n'.join(lines), logger='current', level=logging.WARNING)

    # ------------------------------------------------------------------ scanning
    def scan_item(self, item: dict) -> VolumePrediction:
        """Predict one prepared volume (:meth:`VolumePredictor.predict_prepared`)."""
        return self.predictor.predict_prepared(item)

    def predictions(self) -> Iterator[VolumePrediction]:
        """This rank's predictions, in volume order: :meth:`scan_item` per volume, or with
        ``cross_volume`` :meth:`VolumePredictor.predict_items` (passes across volumes)."""
        if self.predictor.cross_volume:
            return self.predictor.predict_items(self.dataloader)
        return map(self.scan_item, self.dataloader)

    def _result(self, pred: VolumePrediction) -> dict:
        """The per-volume result passed to the evaluator."""
        vol, ann = pred.volume, self.annotation_set
        tracklets = pred.tracklets if self.rescorer is None else self._rescored(pred)
        result = dict(volume_id=vol.key, tracklets=tracklets, image_size=pred.image_size,
                      slice_range=tuple(vol.slice_range), num_slices=pred.num_slices,
                      gt_boxes_2d=ann.boxes_2d.get(vol.key))
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
            f'{self.predictor.stack_cfg["score_thr"]:g}), GT green')

    def run(self) -> dict:
        """Scan this rank's volumes, then evaluate (merged on rank 0)."""
        runner = self.runner
        runner.call_hook('before_test')
        runner.call_hook('before_test_epoch')
        runner.model.eval()
        if self.show_dir:
            os.makedirs(self.show_dir, exist_ok=True)
        n_total, n_mine = len(self.all_volumes), len(self.shard)
        stack = self.predictor.stack_cfg
        runner.logger.info(
            f'VolumeScan: {n_total} volumes of {self.ann_file} '
            f'({self.annotation_set.num_boxes} lesion boxes); rank {self.rank}/{self.world_size} '
            f'scans {n_mine}; t_G={stack["score_thr"]:g}, '
            f'link IoU>{stack["link_iou"]:g}, batch {self.predictor.batch_size}'
            f'{" across volumes" if self.predictor.cross_volume else ""}, '
            f'{self.loader.num_slices}-slice input, workers {self.num_workers}, '
            f'{_precision(self.predictor)}')
        incomplete = self.annotation_set.incomplete_volumes()
        if incomplete and self.rank == 0:
            print_log(f'VolumeScan: {len(incomplete)} of {n_total} volumes of {self.ann_file} '
                      'are not completely annotated (complete: false): P3D counts their '
                      'unmarked lesions as false positives; evaluate on a complete set '
                      '(e.g. Revised-Test1071.pkl) for the paper\'s numbers',
                      logger='current', level=logging.WARNING)
        t0 = time.time()
        n_trk = 0
        bad_slices: List[tuple] = []
        records = self._records() if self.resume else None
        self.records_dir = None if records is None else records.dir
        loaded = []
        if records is not None:
            done = records.finished(v.key for v in self.shard)
            loaded = [p for p in (records.load(v) for v in self.shard if v.key in done) if p]
            if loaded:
                runner.logger.info(f'VolumeScan: rank {self.rank} resumes {len(loaded)} of '
                                   f'{n_mine} volumes from {records.dir}')
        keys_loaded = {p.volume.key for p in loaded}
        # only the volumes without a record are decoded and predicted
        self.inputs = self.predictor.inputs([v for v in self.shard if v.key not in keys_loaded],
                                            self.image_root, cache_volumes=1)
        self.dataloader = self.predictor.dataloader(self.inputs, self.num_workers)
        for pred in loaded:
            n_trk += len(pred.tracklets)
            bad_slices.extend(pred.bad_slices)
            self.evaluator.process(data_samples=[self._result(pred)], data_batch=None)
        n_todo = len(self.inputs)
        for i, pred in enumerate(self.predictions()):
            self.num_decoded += pred.num_decoded
            self.num_slices += pred.num_slices
            if pred.bad_slices:
                bad_slices.extend(pred.bad_slices)
                print_log(f'VolumeScan: {pred.volume.key}: {len(pred.bad_slices)} unreadable '
                          f'slice(s) treated as missing, e.g. {pred.bad_slices[0][0]} '
                          f'({pred.bad_slices[0][1]})', logger='current',
                          level=logging.WARNING)
            if pred.error is not None:
                self.failed[pred.volume.key] = pred.error
                print_log(f'VolumeScan: {pred.volume.key} not scanned: {pred.error}',
                          logger='current', level=logging.WARNING)
                continue  # no record: a rerun tries it again
            if records is not None:
                records.save(pred)
            result = self._result(pred)
            n_trk += len(pred.tracklets)
            if self.show_dir and pred.num_slices:
                self._show(pred.volume, result)
            self.evaluator.process(data_samples=[result], data_batch=None)
            if self.rank == 0 and ((i + 1) % self.log_interval == 0 or i + 1 == n_todo):
                elapsed = time.time() - t0
                eta = elapsed / (i + 1) * (n_todo - i - 1)
                runner.logger.info(
                    f'VolumeScan [{i + 1}/{n_todo}] {result["volume_id"]}: '
                    f'{result["num_slices"]} slices, {len(result["tracklets"])} tracklets; '
                    f'{self.num_slices / max(elapsed, 1e-9):.1f} slices/s, '
                    f'eta {timedelta(seconds=int(eta))}')
        self.bad_slices = bad_slices
        if self.rank == 0:
            runner.logger.info(
                f'VolumeScan: rank 0 scanned {n_todo} volumes ({len(loaded)} more resumed), '
                f'{self.num_slices} slices ({self.num_decoded} PNG decodes), {n_trk} tracklets '
                f'in {time.time() - t0:.1f} s')
        if self.rescorer is not None and self.rank == 0:
            runner.logger.info(f'VolumeScan: stage 2 re-scored {self.rescorer.num_classified} '
                               f'proposals (s = s_g * s_c, boxes kept)')
        self._report_problems(bad_slices)
        if n_mine == 0:
            print_log(f'VolumeScan: rank {self.rank} has no volume to scan '
                      f'({n_total} volumes over {self.world_size} ranks)', logger='current',
                      level=logging.WARNING)
        metrics = self.evaluator.evaluate(n_total)
        runner.call_hook('after_test_epoch', metrics=metrics)
        runner.call_hook('after_test')
        return metrics
