"""MMEngine adapters of the P3D metric (and the base of every per-volume tracklet metric).

The metric consumes *per-volume* results, as :class:`mmlesion.engine.VolumeScanTestLoop` passes
them to the evaluator, one data sample per sub-volume::

    dict(volume_id='000089_01_01_031-043',      # sub-volume key
         tracklets=[Tracklet, ...],              # any layout of mmlesion.structures.tracklet,
                                                 # mmlesion's frame
         image_size=(W, H), slice_range=(first, last),
         gt_boxes_2d=(n, 5) [z, x1, y1, x2, y2],  # optional: ground truth carried by the scan
         gt_boxes_3d=(n, 6) [x1, y1, z1, x2, y2, z2])  # optional

Ground truth comes from ``ann_file`` (mmlesion JSON or a Lesion Harvester / LENS pickle, read by
:func:`~mmlesion.evaluation.annotation_set.load_annotation_set`) or, without it, from
the ``gt_boxes_*`` the scan attached.  The annotation set's volumes are the FP denominator,
volumes without boxes or without tracklets included.  The numbers are those of the numpy cores
in :mod:`mmlesion.evaluation.functional`; ``tools/eval_p3d.py`` computes the same from files.
"""
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmdet.registry import METRICS
from mmlesion.evaluation.annotation_set import load_annotation_set
from mmlesion.evaluation.detection_io import save_lh_detections
from mmlesion.evaluation.functional.froc import INTERP_MODES, P3D_FP_POINTS, FROCResult
from mmlesion.evaluation.functional.p3d import evaluate_p3d
from mmlesion.structures.tracklet import as_tracklets
from mmlesion.structures.volume import AnnotationSet
from mmlesion.structures.volume_key import normalize_key

from .utils import dump_froc_json, froc_table

__all__ = ['VolumeFROCMetric', 'P3DMetric', 'evaluate_p3d_on_set']


def evaluate_p3d_on_set(ann: AnnotationSet, detections: Dict[str, Any], *,
                        iou_thr: float = 0.5, fp_points: Sequence[float] = P3D_FP_POINTS,
                        interp: str = 'extrapolate') -> FROCResult:
    """P3D of tracklets ``{volume_key: [tracklet, ...]}`` (mmlesion frame) on an annotation set.

    The single code path behind :class:`P3DMetric` and ``tools/eval_p3d.py``.
    """
    return evaluate_p3d(ann.boxes_2d, detections, iou_thr=iou_thr, fp_points=fp_points,
                        interp=interp)


class VolumeFROCMetric(BaseMetric):
    """Base of the per-volume tracklet metrics (P3D, 3D IoU): collects tracklets per volume,
    loads the ground truth, evaluates on rank 0, prints a table and writes optional files.

    Args:
        ann_file: ground-truth file (JSON, LH or LENS pickle); None: take the ground truth the
            volume scan attached to each result.
        ann_format: ``'auto'``, ``'json'``, ``'lh2d'``, ``'lh3d'`` or ``'lens'``.
        lens_subset: LENS release subset (``'val'``, ``'test'``; None = both).
        iou_thr: overlap threshold.
        fp_points: FPs per volume at which sensitivity is reported.
        interp: ``'extrapolate'`` (default; 3DCE / Lesion Harvester) or ``'clamp'`` (MULAN).
        drop_noisy: JSON ground truth without ``noisy`` annotations.
        det_out: write all tracklets here in the Lesion Harvester detection format (relative z,
            1-based x/y; ``.pkl`` protocol 2 or ``.json``), scoreable by the authors' evaluator.
        json_out: write ``{"ap", "fps", "sensitivity", counts, "curve"}`` here.
        outfile_prefix: shorthand: ``det_out = <prefix>_<metric>.pkl`` and
            ``json_out = <prefix>_<metric>.json`` unless given.
        collect_device, prefix, collect_dir: as :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix: Optional[str] = None
    gt_field = 'gt_boxes_2d'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 ann_format: str = 'auto',
                 lens_subset: Optional[str] = None,
                 iou_thr: float = 0.5,
                 fp_points: Sequence[float] = P3D_FP_POINTS,
                 interp: str = 'extrapolate',
                 drop_noisy: bool = True,
                 det_out: Optional[str] = None,
                 json_out: Optional[str] = None,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if interp not in INTERP_MODES:
            raise ValueError(f'{type(self).__name__}: interp must be one of {INTERP_MODES}, '
                             f'got {interp!r}')
        fp_points = [float(t) for t in fp_points]
        if not fp_points or any(not t > 0 for t in fp_points):
            raise ValueError(f'{type(self).__name__}: fp_points must be positive FP rates, '
                             f'got {fp_points}')
        if not 0.0 < float(iou_thr) <= 1.0:
            raise ValueError(f'{type(self).__name__}: iou_thr must lie in (0, 1], got {iou_thr}')
        self.ann_file = ann_file
        self.ann_format = ann_format
        self.lens_subset = lens_subset
        self.iou_thr = float(iou_thr)
        self.fp_points = fp_points
        self.interp = interp
        self.drop_noisy = drop_noisy
        name = self.default_prefix or type(self).__name__.lower()
        self.det_out = det_out or (f'{outfile_prefix}_{name}.pkl' if outfile_prefix else None)
        self.json_out = json_out or (f'{outfile_prefix}_{name}.json' if outfile_prefix else None)
        self._ann: Optional[AnnotationSet] = None
        self.last_result: Optional[FROCResult] = None

    # ------------------------------------------------------------------ ground truth
    def annotation_set(self) -> Optional[AnnotationSet]:
        """The ground truth of ``ann_file`` (loaded once), or None without ``ann_file``."""
        if self.ann_file is None:
            return None
        if self._ann is None:
            self._ann = load_annotation_set(self.ann_file, self.ann_format, self.lens_subset,
                                            drop_noisy=self.drop_noisy)
        return self._ann

    def _gt_from_results(self, results: List[dict]) -> Dict[str, np.ndarray]:
        gt = {}
        for r in results:
            value = r.get(self.gt_field)
            if value is None:
                raise ValueError(
                    f'{type(self).__name__}: no ann_file and the result of volume '
                    f'{r["volume_id"]!r} carries no {self.gt_field!r}; set ann_file (the '
                    'annotation set whose volumes are the FP denominator)')
            gt[normalize_key(r['volume_id'])] = np.asarray(value, dtype=np.float64)
        return gt

    def _gt_from_set(self, ann: AnnotationSet) -> Dict[str, np.ndarray]:
        return ann.boxes_2d

    # ------------------------------------------------------------------ BaseMetric API
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Store one entry per volume: key, its tracklets as one ``(B, 6)`` array
        ``[z, x1, y1, x2, y2, score]`` with their lengths, carried GT."""
        for sample in data_samples:
            if 'volume_id' not in sample or 'tracklets' not in sample:
                raise KeyError(
                    f'{type(self).__name__} needs per-volume results with "volume_id" and '
                    f'"tracklets" (use test_cfg=dict(type="VolumeScanTestLoop")); got keys '
                    f'{sorted(sample)}')
            vid = normalize_key(sample['volume_id'])
            trks = as_tracklets(sample['tracklets'], f'volume {vid!r}')
            # one array per volume, not an object per tracklet: a scan of thousands of volumes
            # keeps its memory flat
            entry = dict(volume_id=vid,
                         boxes=np.concatenate([t.to_array() for t in trks]) if trks
                         else np.zeros((0, 6)),
                         lengths=np.array([len(t) for t in trks], dtype=np.int64))
            for key in ('gt_boxes_2d', 'gt_boxes_3d'):
                if sample.get(key) is not None:
                    entry[key] = np.asarray(sample[key], dtype=np.float64)
            self.results.append(entry)

    def evaluate_detections(self, gt: Dict[str, np.ndarray],
                            detections: Dict[str, List[np.ndarray]]) -> FROCResult:
        raise NotImplementedError

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        detections: Dict[str, List[np.ndarray]] = {}
        duplicates = []
        unique = []
        for r in results:
            if r['volume_id'] in detections:
                duplicates.append(r['volume_id'])
                continue
            detections[r['volume_id']] = np.split(r['boxes'], np.cumsum(r['lengths'])[:-1]) \
                if len(r['lengths']) else []
            unique.append(r)
        if duplicates:
            print_log(f'{type(self).__name__}: {len(duplicates)} volume(s) were scanned twice '
                      f'(first result kept), e.g. {duplicates[:3]}', logger='current',
                      level=logging.WARNING)
        ann = self.annotation_set()
        gt = self._gt_from_set(ann) if ann is not None else self._gt_from_results(unique)
        if not gt:
            raise ValueError(f'{type(self).__name__}: the annotation set is empty')
        unscanned = sorted(set(gt) - set(detections))
        if unscanned:
            print_log(f'{type(self).__name__}: {len(unscanned)} of {len(gt)} annotated volumes '
                      f'have no scan result and count as volumes without detections, e.g. '
                      f'{unscanned[:3]}', logger='current', level=logging.WARNING)
        if ann is not None and ann.incomplete_volumes():
            print_log(f'{type(self).__name__}: {len(ann.incomplete_volumes())} volume(s) of '
                      f'{ann.path} are not completely annotated (complete: false); their '
                      'unmarked lesions count as false positives', logger='current',
                      level=logging.WARNING)
        result = self.evaluate_detections(gt, detections)
        self.last_result = result
        if result.n_ignored_dets:
            print_log(f'{type(self).__name__}: {result.n_ignored_dets} tracklet(s) on '
                      f'{len(result.ignored_keys)} volume(s) outside the annotation set were '
                      f'ignored, e.g. {result.ignored_keys[:3]}', logger='current',
                      level=logging.WARNING)
        name = self.prefix or type(self).__name__
        print_log('\n' + froc_table({name: result}, title=f'{name} (IoU >= {self.iou_thr:g}, '
                                    f'{self.interp})'), logger='current')
        self._write_outputs(detections, result)
        return result.summary()

    def _write_outputs(self, detections: Dict[str, List[np.ndarray]], result: FROCResult):
        if self.det_out:
            save_lh_detections(detections, self.det_out)
            print_log(f'wrote {len(detections)} volumes of tracklets (Lesion Harvester format: '
                      f'relative z, 1-based x/y) to {osp.abspath(self.det_out)}',
                      logger='current')
        if self.json_out:
            dump_froc_json(result, self.json_out, metric=self.prefix, iou_thr=self.iou_thr,
                           ann_file=self.ann_file)
            print_log(f'wrote {osp.abspath(self.json_out)}', logger='current')


@METRICS.register_module()
class P3DMetric(VolumeFROCMetric):
    """Lesion Harvester's P3D metric over per-volume tracklets (docs/method.md#eval-p3d).

    A tracklet hits a ground-truth 2D box when its box on that slice has IoU >= ``iou_thr``
    (0.5, ``+1`` pixel convention); FROC at [0.125, ..., 16] FPs per volume and VOC AP, as
    :func:`mmlesion.evaluation.functional.evaluate_p3d`.

    Returns ``{'p3d/AP': .., 'p3d/sens@0.125': .., ..., 'p3d/sens@16': ..}``.  Arguments: see
    :class:`VolumeFROCMetric`.
    """
    default_prefix = 'p3d'
    gt_field = 'gt_boxes_2d'

    def evaluate_detections(self, gt, detections) -> FROCResult:
        return evaluate_p3d(gt, detections, iou_thr=self.iou_thr, fp_points=self.fp_points,
                            interp=self.interp)
