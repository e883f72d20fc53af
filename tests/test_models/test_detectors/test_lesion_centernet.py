"""LesionCenterNet: mmdet's CenterNet plus CenterNet's flip test (heatmap/wh means)."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmlesion.models  # noqa: F401  (registers the components)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmlesion.models import LesionCenterNet


def _data(n=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                      labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    return dict(inputs=[torch.rand(9, h, w, generator=g) * 255 for _ in range(n)],
                data_samples=samples)


def _build(cfg, flip_test):
    init_default_scope('mmdet')
    cfg = copy.deepcopy(cfg)
    cfg['test_cfg']['flip_test'] = flip_test
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def _boxes(samples):
    return [(s.pred_instances.bboxes, s.pred_instances.scores) for s in samples]


def test_without_flip_test_it_is_mmdet_centernet(tiny_detector_cfg):
    model = _build(tiny_detector_cfg, False)
    cfg = copy.deepcopy(tiny_detector_cfg)
    cfg['type'] = 'CenterNet'
    del cfg['test_cfg']['flip_test']
    plain = MODELS.build(cfg).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours, ref = _boxes(model.test_step(_data())), _boxes(plain.test_step(_data()))
    for (b1, s1), (b2, s2) in zip(ours, ref):
        torch.testing.assert_close(b1, b2)
        torch.testing.assert_close(s1, s2)


def test_flip_test_averages_mirrored_maps_by_hand(monkeypatch, tiny_detector_cfg):
    """Stride-4 maps 1 x 16 x 16 for a 64 x 64 input.  The direct pass has a peak 0.6 at
    column 3 and one 0.4 at column 10; the mirrored pass a peak 0.8 at column 12 (= column 3
    mirrored) and nothing else.  Expected: 0.7 at column 3 with the mean wh, 0.2 at column
    10, and the direct pass's offsets."""
    model = _build(tiny_detector_cfg, True)
    h = w = 16
    heat = torch.zeros(2, 1, h, w)
    heat[0, 0, 5, 3] = 0.6
    heat[0, 0, 9, 10] = 0.4
    heat[1, 0, 5, w - 1 - 3] = 0.8
    wh = torch.zeros(2, 2, h, w)
    wh[0, :, 5, 3] = torch.tensor([4.0, 2.0])  # in stride-4 cells
    wh[1, :, 5, w - 1 - 3] = torch.tensor([6.0, 4.0])
    wh[0, :, 9, 10] = torch.tensor([2.0, 2.0])
    offset = torch.zeros(2, 2, h, w)
    offset[0, :, 5, 3] = torch.tensor([0.25, 0.5])
    offset[1, :, 5, w - 1 - 3] = torch.tensor([0.75, 0.75])  # must be ignored
    seen = {}

    def fake_head(feats):
        seen['batch'] = feats[0].shape[0]
        return [heat], [wh], [offset]

    # the head's forward is replaced; its decoding (predict_by_feat) stays the real one
    monkeypatch.setattr(model.bbox_head, 'forward', fake_head)
    data = _data(n=1)
    with torch.no_grad():
        res = model.test_step(data)[0].pred_instances
    assert seen['batch'] == 2  # the direct and the mirrored image in one forward pass
    order = torch.argsort(res.scores, descending=True)
    scores, boxes = res.scores[order], res.bboxes[order]
    torch.testing.assert_close(scores[:2], torch.tensor([0.7, 0.2]))
    # centre (3 + 0.25, 5 + 0.5) cells, wh mean (5, 3) cells; x4 px
    cx, cy, bw, bh = 3.25 * 4, 5.5 * 4, 5.0 * 4, 3.0 * 4
    torch.testing.assert_close(
        boxes[0], torch.tensor([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))
    cx, cy, bw, bh = 10 * 4, 9 * 4, 1.0 * 4, 1.0 * 4  # wh halved: (2 + 0) / 2
    torch.testing.assert_close(
        boxes[1], torch.tensor([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))


@pytest.mark.parametrize('seed', [0, 1])
def test_flip_test_of_a_mirror_symmetric_image_equals_plain_heatmap_symmetrised(
        seed, tiny_detector_cfg):
    """With real weights: flip_test on image I equals plain decoding of the mean of the
    heatmaps of I and of mirror(I) mirrored back, computed here without the flip code."""
    model = _build(tiny_detector_cfg, True)
    data = _data(n=1, seed=seed)
    with torch.no_grad():
        flipped = model.test_step(data)[0].pred_instances
        packed = model.data_preprocessor(data, False)
        x = packed['inputs']
        h1, wh1, off1 = model.bbox_head(model.extract_feat(x))
        h2, wh2, _ = model.bbox_head(model.extract_feat(x.flip(-1)))
        res = model.bbox_head.predict_by_feat(
            [(h1[0] + h2[0].flip(-1)) / 2], [(wh1[0] + wh2[0].flip(-1)) / 2], [off1[0]],
            batch_img_metas=[s.metainfo for s in packed['data_samples']])[0]
    torch.testing.assert_close(flipped.scores, res.scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flipped.bboxes, res.bboxes, rtol=1e-5, atol=1e-4)
    assert isinstance(model, LesionCenterNet) and model.flip_test
