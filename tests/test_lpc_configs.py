"""The lesion proposal classifier's configs (configs/lpc/): parse, inherit as documented, build
their model, and their dataset feeds the model the patches it expects."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LPC_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'lpc', '**', '*.py'), recursive=True))
VARIANTS = {'multiview': ('MultiViewLPC', 'views', 3), 'axial': ('AxialLPC', 'views', 1),
            '3d': ('LPC3D', 'cube', None)}


def test_three_variants_for_deeplesion_and_synthetic():
    names = [osp.relpath(p, osp.join(REPO, 'configs', 'lpc')) for p in LPC_CONFIGS]
    for variant in VARIANTS:
        assert f'lpc-{variant}_resnet18_1xb32-10e_deeplesion.py' in names
        assert f'synthetic/lpc-{variant}_resnet18-tiny_1xb16-5e_synthetic.py' in names


@pytest.mark.parametrize('path', LPC_CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_lpc_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmlesion'], allow_failed_imports=False)
    variant = osp.basename(path).split('_')[0].split('-')[1]
    model_type, mode, num_views = VARIANTS[variant]
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == model_type
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.type == 'ProposalPatchDataset' and ds.mode == mode
        if num_views is not None:
            assert len(ds.views) == model.num_views == num_views
    assert cfg.train_dataloader.dataset.filter_cfg == dict(drop_unknown=True)
    assert cfg.test_dataloader.dataset.test_mode is True
    assert cfg.train_dataloader.dataset.pipeline[-1]['type'] == 'PackLPCInputs'
    assert cfg.val_evaluator.type == 'LPCMetric'


def test_paper_values_visible_in_the_deeplesion_config():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'lpc',
                                   'lpc-multiview_resnet18_1xb32-10e_deeplesion.py'))
    ds = cfg.train_dataloader.dataset
    assert ds.pad_px == 64  # Sec. IV-E
    assert ds.views == ('axial', 'coronal', 'sagittal')
    assert tuple(ds.window_hu) == (-1024, 3071)  # the LPG's window
    assert cfg.model.backbone.type == 'ResNet' and cfg.model.backbone.depth == 18
    assert cfg.model.share_backbone is False  # one trunk per view
    assert cfg.model.backbone.init_cfg is None  # ImageNet weights only from a local file
