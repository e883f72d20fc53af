"""Every user-facing config parses, inherits as documented and builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# detector configs; the lesion proposal classifier's (configs/lpc/) are checked in
# tests/test_lpc_configs.py, the harvest configs (configs/harvest/) below
TOP_LEVEL = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and osp.join('configs', 'lpc', '') not in p
    and osp.join('configs', 'harvest', '') not in p)
HARVEST = sorted(glob.glob(osp.join(REPO, 'configs', 'harvest', '*.py')))


def test_short_aliases_exist():
    for alias in ('mscn_hnsl.py', 'mscn.py', 'centernet_3slice.py'):
        assert osp.join(REPO, 'configs', alias) in TOP_LEVEL


@pytest.mark.parametrize('path', TOP_LEVEL, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmlesion'], allow_failed_imports=False)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    # one-stage (CenterNet) or two-stage (Faster R-CNN: the RoI head's box head)
    head = model.roi_head.bbox_head if getattr(model, 'with_roi_head', False) else model.bbox_head
    assert head.num_classes == 1
    n_slices = cfg.train_dataloader.dataset.pipeline[0]['num_slices']
    assert model.backbone.num_slice_groups * 3 == n_slices


def test_paper_values_visible_in_real_data_config():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mscn_hnsl.py'))
    load, _, rescale = cfg.train_dataloader.dataset.pipeline[:3]
    assert (load['num_slices'], load['slice_interval_mm'], tuple(load['window_hu'])) == \
        (9, 2.0, (-1024, 3071))
    assert (rescale['target_spacing_mm'], rescale['max_size']) == (0.8, 512)
    head = cfg.model.bbox_head
    assert head.type == 'CenterNetHNSLHead'
    assert (head.loss_center_heatmap.alpha, head.loss_center_heatmap.gamma) == (2.0, 4.0)
    assert (head.loss_wh.loss_weight, head.loss_offset.loss_weight) == (0.1, 1.0)
    assert cfg.model.backbone.block_config == (6, 12, 24)
    assert cfg.model.backbone.fusion_levels == (2, )
    mscn = Config.fromfile(osp.join(REPO, 'configs', 'mscn.py'))
    assert mscn.train_dataloader.dataset.drop_hard_negatives is True


@pytest.mark.parametrize('path', HARVEST, ids=lambda p: osp.relpath(p, REPO))
def test_harvest_config_settings(path):
    """Harvest configs parse into HarvestSettings and name LPG and LPC configs that exist."""
    from mmlesion.harvest import HarvestSettings
    s = HarvestSettings.from_config(Config.fromfile(path), path)
    for part in (s.lpg, s.lpc):
        assert osp.isfile(osp.join(REPO, part['config'])), part['config']
    assert s.precision == 0.95 and s.score_thr == 0.1
    assert (s.hard_negative_s_g, s.hard_negative_top_k) == (0.5, 5)
