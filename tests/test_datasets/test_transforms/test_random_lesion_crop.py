import numpy as np
import pytest
from mmengine.dataset import Compose

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmlesion.datasets.transforms import RandomLesionCrop

register_all_modules(init_default_scope=True)


def _results(boxes, hard_negative=None, ignore=None, shape=(100, 120, 9)):
    img = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    n = len(boxes)
    return dict(img=img, img_shape=shape[:2], img_path='x/001.png',
                gt_bboxes=HorizontalBoxes(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
                gt_bboxes_labels=np.zeros(n, dtype=np.int64),
                gt_ignore_flags=np.zeros(n, dtype=bool) if ignore is None else np.array(ignore),
                gt_hard_negative_flags=(np.zeros(n, dtype=bool) if hard_negative is None
                                        else np.array(hard_negative)))


def test_lesion_centred_window_keeps_the_lesion_whole():
    crop = TRANSFORMS.build(dict(type='RandomLesionCrop', crop_size=(40, 30), lesion_prob=1.0))
    assert isinstance(crop, RandomLesionCrop)
    np.random.seed(0)
    corners = set()
    for _ in range(200):
        results = crop(_results([[50, 60, 70, 75]]))
        x0, y0 = results['crop_offset']
        corners.add((x0, y0))
        # every window that contains the box: x0 in [30, 50], y0 in [45, 60]
        assert 30 <= x0 <= 50 and 45 <= y0 <= 60
        assert results['img'].shape == (30, 40, 9) and results['img_shape'] == (30, 40)
        img = _results([])['img']
        np.testing.assert_array_equal(results['img'], img[y0:y0 + 30, x0:x0 + 40])
        np.testing.assert_allclose(results['gt_bboxes'].numpy(),
                                   [[50 - x0, 60 - y0, 70 - x0, 75 - y0]])
    xs, ys = zip(*corners)
    assert min(xs) == 30 and max(xs) == 50 and min(ys) == 45 and max(ys) == 60  # all reachable


def test_centre_rule_drops_and_clips_and_keeps_flags_aligned(monkeypatch):
    crop = RandomLesionCrop(crop_size=(40, 30), lesion_prob=1.0)
    # box 0: lesion, chosen; 1: hard negative half inside (centre inside: clipped, kept);
    # 2: lesion with its centre outside (dropped); 3: ignored lesion inside (kept, still ignored)
    boxes = [[50, 60, 70, 75], [25, 50, 45, 60], [88, 60, 110, 70], [60, 50, 64, 54]]
    results = _results(boxes, hard_negative=[False, True, False, False],
                       ignore=[False, False, False, True])
    monkeypatch.setattr(crop, '_choose_corner', lambda *args: (30, 45))
    out = crop(results)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(),
                               [[20, 15, 40, 30], [0, 5, 15, 15], [30, 5, 34, 9]])
    assert out['gt_hard_negative_flags'].tolist() == [False, True, False]
    assert out['gt_ignore_flags'].tolist() == [False, False, True]
    assert out['gt_bboxes_labels'].tolist() == [0, 0, 0]


def test_only_lesions_are_centred_and_uniform_fallbacks():
    np.random.seed(1)
    crop = RandomLesionCrop(crop_size=32, lesion_prob=1.0)
    # the only lesion is ignored and the other box a hard negative: uniform windows
    corners = {crop(_results([[0, 0, 10, 10], [90, 70, 100, 80]], hard_negative=[True, False],
                             ignore=[False, True]))['crop_offset'] for _ in range(300)}
    xs, ys = zip(*corners)
    assert min(xs) < 10 and max(xs) > 78 and min(ys) < 10 and max(ys) > 58
    assert max(xs) <= 120 - 32 and max(ys) <= 100 - 32
    # a box larger than the window: its centre stays inside
    crop = RandomLesionCrop(crop_size=(20, 20), lesion_prob=1.0)
    for _ in range(50):
        out = crop(_results([[10, 10, 70, 60]]))
        x0, y0 = out['crop_offset']
        assert x0 <= 40 < x0 + 20 and y0 <= 35 < y0 + 20  # centre (40, 35) kept
        np.testing.assert_allclose(out['gt_bboxes'].numpy(), [[0, 0, 20, 20]])
    # lesion_prob 0: uniform although there is a lesion
    crop = RandomLesionCrop(crop_size=32, lesion_prob=0.0)
    corners = {crop(_results([[50, 60, 70, 75]]))['crop_offset'] for _ in range(300)}
    assert min(x for x, _ in corners) < 10


def test_small_images_are_not_cropped_and_no_boxes_is_fine():
    crop = RandomLesionCrop(crop_size=(200, 64), lesion_prob=1.0)
    out = crop(_results([[50, 60, 70, 75]]))
    assert out['img'].shape == (64, 120, 9) and out['crop_offset'][0] == 0
    results = _results([])
    del results['gt_bboxes']
    out = RandomLesionCrop(crop_size=16)(results)
    assert out['img'].shape == (16, 16, 9)


def test_numpy_boxes_and_homography():
    results = _results([[50, 60, 70, 75]])
    results['gt_bboxes'] = results['gt_bboxes'].numpy()
    results['homography_matrix'] = np.eye(3, dtype=np.float32)
    crop = RandomLesionCrop(crop_size=(40, 30), lesion_prob=1.0)
    out = crop(results)
    x0, y0 = out['crop_offset']
    np.testing.assert_allclose(out['gt_bboxes'], [[50 - x0, 60 - y0, 70 - x0, 75 - y0]])
    np.testing.assert_allclose(out['homography_matrix'] @ [55, 65, 1], [55 - x0, 65 - y0, 1])


def test_in_a_pipeline_with_hard_negatives():
    pipeline = Compose([
        dict(type='LoadLesionAnnotations', with_bbox=True),
        dict(type='RandomLesionCrop', crop_size=(40, 30), lesion_prob=1.0),
        dict(type='PackLesionInputs', meta_keys=('img_shape', 'crop_offset')),
    ])
    img = np.zeros((100, 120, 9), dtype=np.float32)
    instances = [dict(bbox=[50, 60, 70, 75], bbox_label=0, ignore_flag=0, hard_negative=False),
                 dict(bbox=[52, 62, 58, 68], bbox_label=0, ignore_flag=0, hard_negative=True)]
    packed = pipeline(dict(img=img, img_shape=(100, 120), instances=instances))
    sample = packed['data_samples']
    x0, y0 = sample.metainfo['crop_offset']
    assert packed['inputs'].shape == (9, 30, 40)
    np.testing.assert_allclose(sample.gt_instances.bboxes.numpy(),
                               [[50 - x0, 60 - y0, 70 - x0, 75 - y0]])
    np.testing.assert_allclose(sample.gt_hard_negatives.bboxes.numpy(),
                               [[52 - x0, 62 - y0, 58 - x0, 68 - y0]])


def test_bad_arguments():
    with pytest.raises(ValueError, match='crop_size'):
        RandomLesionCrop(crop_size=(0, 10))
    with pytest.raises(ValueError, match='lesion_prob'):
        RandomLesionCrop(crop_size=10, lesion_prob=1.5)
    results = _results([[50, 60, 70, 75]])
    results['gt_hard_negative_flags'] = np.zeros(2, dtype=bool)
    with pytest.raises(ValueError, match='gt_hard_negative_flags has 2 entries for 1 boxes'):
        RandomLesionCrop(crop_size=10)(results)
