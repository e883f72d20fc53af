"""tools/scan_proposals.py: a tiny random detector scans synthetic volumes through
predict_volumes; the proposal file lists every volume, labelled by the P3D rule."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet.registry import MODELS
from mmlesion.cli.scan_proposals import main
from mmlesion.evaluation import load_annotation_set
from mmlesion.structures.proposals import ProposalSet

PIPELINE = [
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=(-1024, 3071)),
    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
    dict(type='PackLesionInputs'),
]



pytestmark = pytest.mark.usefixtures('one_torch_thread')

@pytest.fixture
def tiny_detector_files(tmp_path, tiny_detector_cfg):
    """``(config .py, weights .pth)`` of a random tiny MSCN whose boxes are ~12 px."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg)
    # an untrained head predicts boxes of ~0 px, which clipping drops: give them 12 px
    torch.nn.init.constant_(model.bbox_head.wh_head[-1].bias, 12.0)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    cfg = tmp_path / 'tiny.py'
    Config(dict(default_scope='mmdet', model=tiny_detector_cfg,
                test_pipeline=PIPELINE)).dump(str(cfg))
    return str(cfg), str(ckpt)


def test_scan_label_and_write(synthetic_converted, tiny_detector_files, tmp_path):
    root = synthetic_converted
    cfg, ckpt = tiny_detector_files
    vm = str(root / 'ground_truth' / 'Revised-Train-VM.pkl')  # one completely marked volume
    out = tmp_path / 'proposals.json'
    pset = main([cfg, ckpt, '--ann', vm, '--image-root', str(root / 'Images_png'),
                 '--out', str(out), '--label-complete', vm, '--score-thr', '0.0',
                 '--batch-size', '8'])
    back = ProposalSet.load(out)
    ann = load_annotation_set(vm)
    assert list(back.volumes) == list(ann.volumes)
    vol = back.volumes[next(iter(ann.volumes))]
    assert vol.spacing is not None and vol.image_size is not None  # from DL_info.csv
    assert len(back) == len(pset) > 0
    assert all(p.label in (0, 1) and p.label_source == 'complete' for p in back)
    assert back.meta['label_complete'] == vm and back.meta['score_thr'] == 0.0
    assert [p.s_g for p in back] == sorted((p.s_g for p in back), reverse=True)


def test_missing_series_folder_is_a_clear_error(synthetic_converted, tiny_detector_files,
                                                 tmp_path, capsys):
    cfg, ckpt = tiny_detector_files
    vm = str(synthetic_converted / 'ground_truth' / 'Revised-Train-VM.pkl')
    with pytest.raises(SystemExit):
        main([cfg, ckpt, '--ann', vm, '--image-root', str(tmp_path / 'nowhere'),
              '--out', str(tmp_path / 'p.json')])
    assert 'series folder' in capsys.readouterr().err
    assert not (tmp_path / 'p.json').exists()
