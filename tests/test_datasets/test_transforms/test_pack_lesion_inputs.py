import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmlesion.datasets.transforms import PackLesionInputs

register_all_modules(init_default_scope=True)

META = dict(img_id=7, img_path='root/000001_01_01/005.png', volume_id='000001_01_01_001-009',
            slice_index=5, slice_range=[1, 9], spacing=[0.7, 0.7, 2.5], slice_interval=2.5,
            num_slices=9)


def _instances():
    return [
        dict(bbox=[1.0, 1.0, 3.0, 2.0], bbox_label=0, ignore_flag=0, hard_negative=False),
        dict(bbox=[0.0, 2.0, 2.0, 4.0], bbox_label=0, ignore_flag=0, hard_negative=True),
        dict(bbox=[2.0, 0.0, 5.0, 3.0], bbox_label=0, ignore_flag=1, hard_negative=False),
        dict(bbox=[3.0, 3.0, 4.0, 4.0], bbox_label=0, ignore_flag=1, hard_negative=True),
    ]


def _results(img=None):
    img = np.arange(4 * 5 * 9, dtype=np.float32).reshape(4, 5, 9) if img is None else img
    return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], instances=_instances(),
                **META)


def test_pack_separates_hard_negatives_and_keeps_channels():
    pipeline = Compose([dict(type='LoadLesionAnnotations', with_bbox=True),
                        dict(type='PackLesionInputs')])
    assert isinstance(pipeline.transforms[1], PackLesionInputs)
    results = _results()
    img = results['img'].copy()
    packed = pipeline(results)
    inputs = packed['inputs']
    assert inputs.shape == (9, 4, 5) and inputs.dtype == torch.float32
    for c in range(9):
        np.testing.assert_array_equal(inputs[c].numpy(), img[..., c])
    sample = packed['data_samples']
    assert isinstance(sample.gt_instances.bboxes, HorizontalBoxes)
    np.testing.assert_array_equal(sample.gt_instances.bboxes.numpy(), [[1, 1, 3, 2]])
    assert sample.gt_instances.labels.tolist() == [0]
    np.testing.assert_array_equal(sample.ignored_instances.bboxes.numpy(), [[2, 0, 5, 3]])
    negatives = sample.gt_hard_negatives
    assert isinstance(negatives.bboxes, HorizontalBoxes)
    np.testing.assert_array_equal(negatives.bboxes.numpy(), [[0, 2, 2, 4]])  # ignored one dropped
    assert negatives.labels.tolist() == [0]
    meta = sample.metainfo
    for key, value in META.items():
        assert meta[key] == value
    assert meta['flip'] is False and meta['flip_direction'] is None
    assert meta['scale_factor'] == (1.0, 1.0)
    assert meta['spacing_mm'] == (0.7, 0.7)
    assert meta['img_shape'] == (4, 5) and meta['ori_shape'] == (4, 5)


def test_random_flip_keeps_hard_negative_flags_aligned():
    pipeline = Compose([dict(type='LoadLesionAnnotations', with_bbox=True),
                        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
                        dict(type='PackLesionInputs')])
    packed = pipeline(_results())
    sample = packed['data_samples']
    # horizontal flip on a 5 px wide image: x1' = 5 - x2, x2' = 5 - x1
    np.testing.assert_array_equal(sample.gt_instances.bboxes.numpy(), [[2, 1, 4, 2]])
    np.testing.assert_array_equal(sample.gt_hard_negatives.bboxes.numpy(), [[3, 2, 5, 4]])
    assert sample.metainfo['flip'] is True and sample.metainfo['flip_direction'] == 'horizontal'
    # the flipped image: column x of the output is column 4 - x of the input
    img = _results()['img']
    np.testing.assert_array_equal(packed['inputs'][:, :, 0].numpy(), img[:, 4, :].T)


def test_numpy_boxes_and_no_hard_negatives():
    pipeline = Compose([dict(type='LoadLesionAnnotations', with_bbox=True, box_type=None),
                        dict(type='PackLesionInputs')])
    results = _results()
    results['instances'] = [dict(inst, hard_negative=False) for inst in _instances()[:1]]
    sample = pipeline(results)['data_samples']
    assert torch.is_tensor(sample.gt_instances.bboxes)
    assert sample.gt_instances.bboxes.tolist() == [[1, 1, 3, 2]]
    assert torch.is_tensor(sample.gt_hard_negatives.bboxes)
    assert tuple(sample.gt_hard_negatives.bboxes.shape) == (0, 4)
    assert sample.gt_hard_negatives.labels.shape == (0,)


def test_only_hard_negatives():
    pipeline = Compose([dict(type='LoadLesionAnnotations', with_bbox=True),
                        dict(type='PackLesionInputs')])
    results = _results()
    results['instances'] = [_instances()[1]]
    sample = pipeline(results)['data_samples']
    assert len(sample.gt_instances) == 0
    assert len(sample.gt_instances.bboxes) == 0
    np.testing.assert_array_equal(sample.gt_hard_negatives.bboxes.numpy(), [[0, 2, 2, 4]])


def test_misaligned_flags_and_missing_meta_are_errors():
    pack = TRANSFORMS.build(dict(type='PackLesionInputs'))
    results = TRANSFORMS.build(dict(type='LoadLesionAnnotations'))(_results())
    results['gt_hard_negative_flags'] = results['gt_hard_negative_flags'][:2]
    with pytest.raises(ValueError, match='dropped boxes'):
        pack(results)
    results = _results()
    del results['volume_id']
    with pytest.raises(KeyError, match='volume_id'):
        pack(results)


def test_test_pipeline_without_boxes():
    packed = PackLesionInputs()(dict((k, v) for k, v in _results().items() if k != 'instances'))
    sample = packed['data_samples']
    assert 'gt_hard_negatives' not in sample
    assert sample.metainfo['slice_index'] == 5
