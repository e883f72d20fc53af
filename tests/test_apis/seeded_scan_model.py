"""The seeded tiny MSCN the scan tests compare outputs of (pinned outputs, GPU-path variants)."""
import copy

import torch

from mmlesion.apis import init_lesion_detector


def seeded_scan_model(tiny_detector_cfg: dict, pipeline: list):
    """A tiny MSCN with seed-0 weights and the test ``pipeline``; its untrained head predicts
    ~0 px boxes, which clipping drops, so the wh bias gives them 12 px."""
    torch.manual_seed(0)
    cfg = dict(default_scope='mmdet', model=copy.deepcopy(tiny_detector_cfg),
               test_pipeline=copy.deepcopy(pipeline))
    cfg['model']['test_cfg'].update(topk=20, max_per_img=20)
    model = init_lesion_detector(cfg, None)
    torch.nn.init.constant_(model.bbox_head.wh_head[-1].bias, 12.0)
    return model
