"""The second stage of the two-stage 3D false-positive reduction: ``s = s_g * s_c`` on every
tracklet, boxes kept, each proposal classified once, on the seed's (25, 60, 60) cube."""
import numpy as np
import pytest
import torch

import mmlesion  # noqa: F401  (registers the components)
from mmlesion.apis.false_positive_reduction import TrackletRescorer, rescore_tracklets
from mmlesion.structures.tracklet import Tracklet


def _tracklets():
    return [
        Tracklet(np.array([10, 11, 12]),
                 np.array([[20., 30., 40., 52., 0.4], [19., 29., 41., 53., 0.8],
                           [21., 31., 39., 50., 0.2]])),
        Tracklet(np.array([14]), np.array([[60.5, 70.25, 80., 90., 0.3]])),
    ]


def test_rescore_multiplies_every_slice_score_and_keeps_the_boxes():
    trks = _tracklets()
    out = rescore_tracklets(trks, [0.5, 0.25])
    # hand-computed: tracklet scores s_g * s_c = 0.8 * 0.5 and 0.3 * 0.25
    assert [t.score for t in out] == [pytest.approx(0.4), pytest.approx(0.075)]
    np.testing.assert_array_equal(out[0].boxes[:, 4], [0.2, 0.4, 0.1])
    for a, b in zip(trks, out):
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.boxes[:, :4], b.boxes[:, :4])
    assert trks[0].boxes[1, 4] == 0.8  # the input is not modified
    assert rescore_tracklets([], []) == []
    with pytest.raises(ValueError, match='2 tracklets but 1 classifier scores'):
        rescore_tracklets(trks, [0.5])
    with pytest.raises(ValueError, match=r'probabilities in \[0, 1\]'):
        rescore_tracklets(trks, [0.5, 1.5])


def tiny_lpc3d_config(patch_size=(25, 60, 60)):
    """A 3D LPC (ResNet3D at 4 channels) with the synthetic config's patch settings."""
    return dict(
        default_scope='mmdet',
        model=dict(type='LPC3D',
                   data_preprocessor=dict(type='LPCDataPreprocessor', mean=117.0, std=57.6),
                   backbone=dict(type='ResNet3D', depth=18, in_channels=1, base_channels=4)),
        test_dataloader=dict(dataset=dict(
            type='ProposalPatchDataset', mode='cube', patch_size=patch_size, pad_px=32,
            window_hu=(-1024, 3071), pipeline=[dict(type='PackLPCInputs')])))


def _volume():
    """A 20-slice 96 x 96 HU volume (absolute z 5..24): air with two bright blobs."""
    rng = np.random.default_rng(0)
    vol = {}
    yy, xx = np.mgrid[:96, :96]
    for z in range(5, 25):
        hu = rng.normal(-900, 20, (96, 96)).astype(np.float32)
        hu[(yy - 40) ** 2 + (xx - 30) ** 2 < 100] = 60.0
        hu[(yy - 80) ** 2 + (xx - 70) ** 2 < 30] = 300.0
        vol[z] = hu
    return vol


def test_rescorer_classifies_every_proposal_once(one_torch_thread):
    torch.manual_seed(0)
    rescorer = TrackletRescorer.from_config(tiny_lpc3d_config(), None, batch_size=2)
    assert rescorer.patch_cfg['patch_size'] == (25, 60, 60)
    assert rescorer.patch_cfg['mode'] == 'cube'
    seen = []
    test_step = rescorer.classifier.test_step

    def counting(data):
        seen.extend((tuple(x.shape), s.s_g) for x, s in zip(data['inputs'],
                                                              data['data_samples']))
        return test_step(data)

    rescorer.classifier.test_step = counting
    vol = _volume()
    trks = _tracklets() + [Tracklet(np.array([20, 21]),
                                    np.array([[65., 75., 76., 86., 0.9],
                                              [66., 74., 75., 85., 0.7]]))]
    s_c = rescorer.classify(vol, trks, pixel_mm=0.8, slice_interval_mm=2.0)
    # 3 proposals in batches of 2 and 1: each classified once, in order, on a (25, 60, 60) cube
    assert [s_g for _, s_g in seen] == [pytest.approx(t.score) for t in trks]
    assert all(shape == (1, 25, 60, 60) for shape, _ in seen)
    assert rescorer.num_classified == 3
    assert s_c.shape == (3, ) and ((s_c > 0) & (s_c < 1)).all()
    # one proposal at a time gives the same s_c (batching does not change a score)
    alone = np.concatenate([rescorer.classify(vol, [t], 0.8, 2.0) for t in trks])
    np.testing.assert_allclose(alone, s_c, rtol=1e-5)
    out = rescorer(vol, trks, 0.8, 2.0)
    np.testing.assert_allclose([t.score for t in out], [t.score * s for t, s in zip(trks, s_c)],
                               rtol=1e-5)
    assert rescorer.classify(vol, [], 0.8, 2.0).shape == (0, )


def test_rescorer_needs_a_config():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match='no .cfg'):
        TrackletRescorer(model)
