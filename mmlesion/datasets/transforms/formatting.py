"""Pack multi-slice inputs, lesion boxes and hard negatives into mmdet's data samples."""
from typing import Sequence

import numpy as np
from mmcv.transforms import to_tensor
from mmengine.structures import InstanceData

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes

DEFAULT_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                     'flip_direction', 'volume_id', 'slice_index', 'slice_range', 'spacing',
                     'spacing_mm', 'slice_interval', 'num_slices')


@TRANSFORMS.register_module()
class PackLesionInputs(PackDetInputs):
    """``PackDetInputs`` for ``H x W x C`` multi-slice images (any ``C``) with hard negatives.

    Output: ``inputs`` — tensor ``C x H x W`` (channel order kept: increasing slice index, key
    slice at ``C // 2``); ``data_samples`` — a ``DetDataSample`` with

    * ``gt_instances``: the lesions (``hard_negative`` False, not ignored): ``bboxes`` and
      ``labels``, as ``PackDetInputs`` makes them;
    * ``ignored_instances``: ignored lesions (``gt_ignore_flags``), as in mmdet;
    * ``gt_hard_negatives``: boxes flagged in ``gt_hard_negative_flags`` (not ignored), with the
      same box type as ``gt_instances.bboxes`` (``HorizontalBoxes`` from mmdet's loader) and
      ``labels``; empty when there are none (also without ``gt_hard_negative_flags``).  Ignored
      hard negatives are dropped.  Without ``gt_bboxes`` (test pipelines) neither is set.

    Meta keys not in the results take neutral values when the transform that sets them did not
    run: ``flip`` False, ``flip_direction`` None, ``scale_factor`` (1.0, 1.0), ``spacing_mm`` =
    ``spacing[:2]``; any other missing meta key is an error.

    Args:
        meta_keys: keys copied into the data sample's metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        super().__init__(meta_keys=tuple(meta_keys))

    @staticmethod
    def _fill_neutral_meta(results: dict) -> None:
        results.setdefault('flip', False)
        results.setdefault('flip_direction', None)
        results.setdefault('scale_factor', (1.0, 1.0))
        if 'spacing_mm' not in results and results.get('spacing') is not None:
            results['spacing_mm'] = tuple(float(v) for v in results['spacing'][:2])

    def transform(self, results: dict) -> dict:
        self._fill_neutral_meta(results)
        missing = [key for key in self.meta_keys if key not in results]
        if missing:
            raise KeyError(f'PackLesionInputs: meta keys {missing} not found for '
                           f'{results.get("img_path")!r}; available keys: {sorted(results)}')
        if 'gt_bboxes' not in results:
            return super().transform(results)
        flags = results.get('gt_hard_negative_flags')
        if flags is None:
            flags = np.zeros(len(results['gt_bboxes']), dtype=bool)
        flags = np.asarray(flags, dtype=bool)
        num_boxes = len(results['gt_bboxes'])
        if flags.shape != (num_boxes,):
            raise ValueError(
                f'gt_hard_negative_flags has shape {flags.shape} but there are {num_boxes} boxes '
                f'({results.get("img_path")!r}): a transform dropped boxes without updating the '
                'flags (with hard negatives, crop with RandomLesionCrop; mmdet\'s crops and '
                'FilterAnnotations do not know the flags)')
        ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(num_boxes, dtype=bool)),
                            dtype=bool)
        positives = np.flatnonzero(~flags)
        hard_negatives = np.flatnonzero(flags & ~ignore)

        positive_results = dict(results)
        for key in list(self.mapping_table) + ['gt_ignore_flags']:
            if key in results:
                positive_results[key] = results[key][positives]
        positive_results.pop('gt_hard_negative_flags', None)
        packed = super().transform(positive_results)

        negatives = InstanceData()
        bboxes = results['gt_bboxes'][hard_negatives]
        negatives.bboxes = bboxes if isinstance(bboxes, BaseBoxes) else to_tensor(bboxes)
        if 'gt_bboxes_labels' in results:
            negatives.labels = to_tensor(results['gt_bboxes_labels'][hard_negatives])
        packed['data_samples'].gt_hard_negatives = negatives
        return packed
