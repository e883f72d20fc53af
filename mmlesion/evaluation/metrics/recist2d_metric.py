"""MMEngine adapter of the legacy DeepLesion 2D metric (key-slice FROC, 3DCE / MULAN).

Works with mmengine's ordinary per-image ``TestLoop`` / ``ValLoop``: each data sample is a key
slice with ``pred_instances`` in the *original* image frame (mmdet's ``predict(rescale=True)``
divides by ``scale_factor``), so it can also be the ``val_evaluator`` during training.
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
from mmlesion.evaluation.functional.froc import INTERP_MODES, RECIST_FP_POINTS, FROCResult
from mmlesion.evaluation.functional.recist2d import CRITERIA, evaluate_recist_2d
from mmlesion.structures.volume import AnnotationSet

from .utils import dump_froc_json, froc_table

__all__ = ['Recist2DMetric']


def _as_numpy(value) -> np.ndarray:
    value = getattr(value, 'tensor', value)  # mmdet BaseBoxes
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


@METRICS.register_module()
class Recist2DMetric(BaseMetric):
    """Sensitivity at [0.5, 1, 2, 4, 8, 16] FPs per key slice and AP, IoU >= 0.5 (``+1``
    pixels), each ground truth counted once (docs/method.md#eval-recist2d); optionally the IoBB
    variant.

    Ground truth: with ``ann_file`` (mmlesion JSON), the lesions of every image of the file,
    matched by ``img_id`` -- the file's images are the FP denominator; without it, the
    ``gt_instances`` of the data samples, which must then be in the original image frame (the
    test pipelines load annotations *after* ``RescaleToSpacing`` for this reason).

    Args:
        ann_file: mmlesion JSON of the evaluated key slices, or None.
        criteria: overlap criteria to report: ``'iou'`` and/or ``'iobb'`` (intersection over the
            detected box).  Keys of the first are plain (``recist2d/sens@0.5``), of others
            prefixed (``recist2d/iobb_sens@0.5``).
        iou_thr: overlap threshold (0.5).
        fp_points: FPs per image.
        interp: ``'extrapolate'`` (3DCE) or ``'clamp'`` (MULAN).
        drop_noisy: leave out JSON annotations flagged ``noisy``.
        det_out: write the detections in the Lesion Harvester format, each box a one-slice
            tracklet of its sub-volume (relative z, 1-based x/y).
        json_out: write the FROC summary of the first criterion here.
        outfile_prefix: shorthand for ``det_out=<prefix>_recist2d.pkl``,
            ``json_out=<prefix>_recist2d.json``.
    """
    default_prefix: Optional[str] = 'recist2d'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 criteria: Sequence[str] = ('iou', 'iobb'),
                 iou_thr: float = 0.5,
                 fp_points: Sequence[float] = RECIST_FP_POINTS,
                 interp: str = 'extrapolate',
                 drop_noisy: bool = True,
                 det_out: Optional[str] = None,
                 json_out: Optional[str] = None,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        criteria = [criteria] if isinstance(criteria, str) else list(criteria)
        bad = [c for c in criteria if c not in CRITERIA]
        if not criteria or bad:
            raise ValueError(f'Recist2DMetric: criteria must be a non-empty subset of {CRITERIA}, '
                             f'got {criteria}')
        if interp not in INTERP_MODES:
            raise ValueError(f'Recist2DMetric: interp must be one of {INTERP_MODES}, '
                             f'got {interp!r}')
        self.ann_file = ann_file
        self.criteria = criteria
        self.iou_thr = float(iou_thr)
        self.fp_points = [float(t) for t in fp_points]
        self.interp = interp
        self.drop_noisy = drop_noisy
        self.det_out = det_out or (f'{outfile_prefix}_recist2d.pkl' if outfile_prefix else None)
        self.json_out = json_out or (f'{outfile_prefix}_recist2d.json' if outfile_prefix else None)
        self._ann: Optional[AnnotationSet] = None
        self.last_results: Dict[str, FROCResult] = {}

    def annotation_set(self) -> Optional[AnnotationSet]:
        if self.ann_file is None:
            return None
        if self._ann is None:
            ann = load_annotation_set(self.ann_file, drop_noisy=self.drop_noisy)
            if ann.images is None:
                raise ValueError(f'Recist2DMetric: {self.ann_file} is a release pickle; the 2D '
                                 'metric matches key slices by img_id and needs the mmlesion '
                                 'JSON (tools/import_annotations.py --dl-info converts it)')
            self._ann = ann
        return self._ann

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_instances' not in sample:
                raise KeyError('Recist2DMetric needs data samples with pred_instances (run it '
                               'with the per-image TestLoop / ValLoop)')
            pred = sample['pred_instances']
            boxes = _as_numpy(pred['bboxes']).reshape(-1, 4)
            scores = _as_numpy(pred['scores']).reshape(-1, 1)
            entry = dict(img_id=sample.get('img_id'), volume_id=sample.get('volume_id'),
                         slice_index=sample.get('slice_index'),
                         dets=np.concatenate([boxes, scores], axis=1))
            gt = sample.get('gt_instances')
            if gt is not None and 'bboxes' in gt:
                entry['gt'] = _as_numpy(gt['bboxes']).reshape(-1, 4)
            self.results.append(entry)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        dets, seen = {}, []
        for r in results:
            if r['img_id'] in dets:
                continue  # a distributed sampler may pad with repeats
            dets[r['img_id']] = r['dets']
            seen.append(r)
        ann = self.annotation_set()
        if ann is not None:
            gt = {i: v[2] for i, v in ann.images.items()}
            unknown = [i for i in dets if i not in gt]
            if unknown:
                raise ValueError(f'Recist2DMetric: {len(unknown)} evaluated image(s) are not in '
                                 f'{self.ann_file}, e.g. img_id {unknown[:3]}: is ann_file the '
                                 'dataset\'s annotation file?')
            if len(dets) < len(gt):
                print_log(f'Recist2DMetric: {len(gt) - len(dets)} of {len(gt)} images of '
                          f'{self.ann_file} were not evaluated; they count as images without '
                          'detections', logger='current', level=logging.WARNING)
        else:
            missing = [r['img_id'] for r in seen if r.get('gt') is None]
            if missing:
                raise ValueError('Recist2DMetric: no ann_file and data samples without '
                                 f'gt_instances (img_id {missing[:3]}); set ann_file or keep '
                                 'LoadLesionAnnotations in the test pipeline')
            gt = {r['img_id']: r['gt'] for r in seen}
        out: Dict[str, float] = {}
        self.last_results = {}
        for i, criterion in enumerate(self.criteria):
            result = evaluate_recist_2d(gt, dets, iou_thr=self.iou_thr, criterion=criterion,
                                        fp_points=self.fp_points, interp=self.interp)
            self.last_results[criterion] = result
            tag = '' if i == 0 else f'{criterion}_'
            out.update({tag + k: v for k, v in result.summary().items()})
        name = self.prefix or 'recist2d'
        print_log('\n' + froc_table({c.upper(): r for c, r in self.last_results.items()},
                                    title=f'{name} (overlap >= {self.iou_thr:g}, {self.interp})',
                                    unit='FPs/image'), logger='current')
        self._write_outputs(seen, ann)
        return out

    def _write_outputs(self, seen: List[dict], ann: Optional[AnnotationSet]) -> None:
        if self.det_out:
            by_volume: Dict[str, list] = {}
            for r in seen:
                vid, z = r.get('volume_id'), r.get('slice_index')
                if (vid is None or z is None) and ann is not None and r['img_id'] in ann.images:
                    vid, z = ann.images[r['img_id']][:2]
                if vid is None or z is None:
                    raise ValueError(f'Recist2DMetric: det_out needs volume_id and slice_index '
                                     f'in the metainfo of img_id {r["img_id"]!r} '
                                     '(PackLesionInputs keeps them)')
                trks = by_volume.setdefault(str(vid), [])
                trks.extend([[(int(z), [float(v) for v in d])] for d in r['dets']])
            save_lh_detections(by_volume, self.det_out)
            print_log(f'wrote key-slice detections of {len(seen)} images (Lesion Harvester '
                      f'format, one-slice tracklets) to {osp.abspath(self.det_out)}',
                      logger='current')
        if self.json_out:
            first = self.criteria[0]
            dump_froc_json(self.last_results[first], self.json_out, metric=self.prefix,
                           criterion=first, iou_thr=self.iou_thr, ann_file=self.ann_file)
