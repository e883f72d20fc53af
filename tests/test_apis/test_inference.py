"""The inference API: predict_volume is the scan loop's path (same tracklets to the last digit),
reads DeepLesion PNGs or an in-memory HU array alike, and init_lesion_detector loads weights
with the checkpoint trust rules."""
import copy
import glob

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.apis import (
    VolumePredictor,
    get_test_pipeline,
    init_lesion_detector,
    predict_volume,
    predict_volumes,
)
from mmlesion.datasets.volume_reader import VolumeReader
from mmlesion.engine import UntrustedCheckpointError
from mmlesion.evaluation.detection_io import save_lh_detections
from mmlesion.structures import Tracklet
from mmlesion.utils.safe_pickle import load_pickle


def _lh_bytes(tracklets_by_volume, path):
    save_lh_detections(tracklets_by_volume, path)
    with open(path, 'rb') as f:
        return f.read()


def test_predict_volume_equals_the_scan_loop(synthetic_converted, tmp_path, tiny_detector_cfg,
                                             volume_scan_config, complete_gt_pickle):
    root = synthetic_converted
    ann, keys = complete_gt_pickle
    reader = VolumeReader(str(root / 'Images_png'), max_volumes=0)
    # a volume whose slices are all on disk, so that its HU array is the same input
    key = next(k for k in keys
               if len(reader.available_slices(k[:12], (int(k[13:16]), int(k[17:20])))) ==
               int(k[17:20]) - int(k[13:16]) + 1)
    model_cfg = copy.deepcopy(tiny_detector_cfg)
    model_cfg['test_cfg'].update(topk=20, max_per_img=20)
    cfg = volume_scan_config(root, tmp_path / 'work', model_cfg,
                             dict(type='P3DMetric', det_out=str(tmp_path / 'loop.pkl')),
                             ann_file=ann, volumes=[key], score_thr=0.0)
    cfg['randomness'] = dict(seed=0)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    # an untrained head predicts boxes of ~0 px, which clipping drops: give them 12 px, so the
    # random features' peaks become boxes that the stacker links across similar slices
    torch.nn.init.constant_(runner.model.bbox_head.wh_head[-1].bias, 12.0)
    ckpt = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=runner.model.state_dict()), ckpt)
    runner.test()
    with open(tmp_path / 'loop.pkl', 'rb') as f:
        loop_bytes = f.read()
    loop_trks = load_pickle(tmp_path / 'loop.pkl')[key]
    assert len(loop_trks) > 10 and max(map(len, loop_trks)) > 1  # linked and single-slice

    model = init_lesion_detector(cfg, ckpt)
    assert not model.training and model.dataset_meta['classes'] == ('lesion', )
    tracklets = predict_volume(model, key, image_root=str(root / 'Images_png'),
                               score_thr=0.0, batch_size=4)
    assert all(isinstance(t, Tracklet) for t in tracklets)
    assert _lh_bytes({key: tracklets}, tmp_path / 'api.pkl') == loop_bytes

    # the same volume as a (Z, H, W) HU array with its spacing: the same tracklets
    first, last = int(key[13:16]), int(key[17:20])
    hu = np.stack([reader.read_slice(key[:12], z) for z in range(first, last + 1)])
    vol = runner.test_loop.all_volumes[0]
    from_array = predict_volume(model, hu, spacing=vol.spacing, first_slice=first,
                                score_thr=0.0, batch_size=4)
    assert len(from_array) == len(tracklets)
    for a, b in zip(from_array, tracklets):
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.boxes, b.boxes)

    # the batched form keeps the order and reports what it scanned
    preds = list(predict_volumes(model, [key, hu], str(root / 'Images_png'), spacing=vol.spacing,
                                 first_slice=first, score_thr=0.0, batch_size=4))
    assert [p.volume.key for p in preds] == [key, 'array']
    assert preds[0].num_slices == preds[1].num_slices == last - first + 1
    assert preds[0].num_decoded == last - first + 1 and preds[1].num_decoded == 0
    assert sorted(preds[0].slice_dets) == list(range(first, last + 1))


def test_bad_requests_name_what_is_missing(synthetic_converted, tmp_path, tiny_detector_cfg,
                                           volume_scan_config):
    root = synthetic_converted
    cfg = volume_scan_config(root, tmp_path / 'work', copy.deepcopy(tiny_detector_cfg), None)
    model = init_lesion_detector(cfg)
    key = load_pickle(glob.glob(str(root / 'ground_truth' / 'Revised-*.pkl'))[0])
    key = sorted(key)[0][:-len('.annot')]
    with pytest.raises(ValueError, match='image_root'):
        predict_volume(model, key)
    bare = tmp_path / 'bare'
    bare.mkdir()
    (bare / 'Images_png').symlink_to(root / 'Images_png')
    with pytest.raises(ValueError, match=f'no pixel spacing.*{key}'):
        predict_volume(model, key, image_root=str(bare / 'Images_png'))
    with pytest.raises(ValueError, match=r'spacing=\(x, y, z\)'):
        predict_volume(model, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r'\(Z, H, W\)'):
        predict_volume(model, np.zeros((32, 32), np.float32), spacing=(1, 1, 1))
    with pytest.raises(ValueError, match='LoadMultiSliceFromFile'):
        VolumePredictor(model, pipeline=[dict(type='PackLesionInputs')])
    assert get_test_pipeline(model.cfg) == cfg['test_dataloader']['dataset']['pipeline']
    del model.cfg
    with pytest.raises(ValueError, match='init_lesion_detector'):
        VolumePredictor(model)


def test_init_lesion_detector_trusts_only_on_request(tmp_path, tiny_detector_cfg):
    cfg = dict(default_scope='mmdet', model=copy.deepcopy(tiny_detector_cfg))
    torch.manual_seed(1)
    reference = init_lesion_detector(cfg)
    state = reference.state_dict()
    # a training checkpoint holds more than tensors (here a numpy array in its meta)
    path = tmp_path / 'ckpts' / 'epoch_1.pth'
    path.parent.mkdir()
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=dict(classes=('lesion', )),
                                                 hist=np.arange(3))), path)
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        init_lesion_detector(cfg, str(path))
    model = init_lesion_detector(cfg, str(path), trust_checkpoint=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
