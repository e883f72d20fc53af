"""Every component mmlesion registers builds from a plain config dict (the commonest mmdet user
error is "X is not in the registry"), and the converter's category name is the dataset's class
name."""
import json

import pytest
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet import registry as mmdet_registry

CONFIGS = {
    'MODELS': [
        dict(type='DenseNet25D', num_slice_groups=3, growth_rate=8, block_config=(1, 1, 1),
             num_init_features=16),
        dict(type='LesionFPNUpsample', in_channels=[24, 20, 18], out_channels=8),
        dict(type='CenterNetHNSLHead', num_classes=1, in_channels=8, feat_channels=8),
        dict(type='LesionCenterNet',
             backbone=dict(type='DenseNet25D', num_slice_groups=3, growth_rate=8,
                           block_config=(1, 1, 1), num_init_features=16),
             neck=dict(type='LesionFPNUpsample', in_channels=[24, 20, 18], out_channels=8),
             bbox_head=dict(type='CenterNetHNSLHead', num_classes=1, in_channels=8,
                            feat_channels=8),
             test_cfg=dict(topk=10, local_maximum_kernel=3, max_per_img=10, flip_test=True)),
        dict(type='ResNet3D', depth=18, base_channels=4),
        dict(type='LPCDataPreprocessor', mean=128.0, std=64.0),
        dict(type='MultiViewLPC', backbone=dict(type='ResNet', depth=18, in_channels=1,
                                                base_channels=4, out_indices=(3, ))),
        dict(type='AxialLPC', backbone=dict(type='ResNet', depth=18, in_channels=1,
                                            base_channels=4, out_indices=(3, ))),
        dict(type='LPC3D', backbone=dict(type='ResNet3D', depth=18, base_channels=4)),
        dict(type='NegativeWeightedBBoxHead', in_channels=8, fc_out_channels=16,
             roi_feat_size=7, num_classes=1),
    ],
    'TASK_UTILS': [
        dict(type='OverlapSoftSampler', num=64, pos_fraction=0.25),
        dict(type='OverlapBandWeightSampler', num=64, pos_fraction=0.25),
    ],
    'TRANSFORMS': [
        dict(type='LoadMultiSliceFromFile', num_slices=9),
        dict(type='LoadLesionAnnotations', with_bbox=True),
        dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
        dict(type='RandomLesionCrop', crop_size=128),
        dict(type='PackLesionInputs'),
        dict(type='RandomFlipLPC', prob=0.5),
        dict(type='RandomTransposeLPC', prob=0.5),
        dict(type='PackLPCInputs'),
    ],
    'METRICS': [
        dict(type='P3DMetric'),
        dict(type='IoU3DMetric'),
        dict(type='Recist2DMetric'),
        dict(type='LPCMetric'),
    ],
    'HOOKS': [dict(type='KeySliceOverlayHook', out_dir='unused'),
              dict(type='MemoryFormatHook', memory_format='channels_last'),
              dict(type='RecordOwnCheckpointsHook')],
}
# needs a runner: built and run end to end in tests/test_engine/test_volume_scan.py; needs files:
# ProposalPatchDataset is built from config dicts in tests/test_datasets/test_lpc_dataset.py
# ProposalBalancedSampler needs a dataset: tests/test_datasets/test_samplers.py
BUILT_ELSEWHERE = {'LOOPS': {'VolumeScanTestLoop'},
                   'DATASETS': {'DeepLesionDataset', 'ProposalPatchDataset'},
                   'DATA_SAMPLERS': {'ProposalBalancedSampler'}}


def _own(registry):
    return {k for k, v in registry.module_dict.items()
            if getattr(v, '__module__', '').startswith('mmlesion')}


def test_every_registered_type_is_covered():
    for name in ('MODELS', 'TASK_UTILS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
                 'DATA_SAMPLERS'):
        covered = {c['type'] for c in CONFIGS.get(name, [])} | BUILT_ELSEWHERE.get(name, set())
        assert _own(getattr(mmdet_registry, name)) == covered, name


@pytest.mark.parametrize('registry,cfg', [(r, c) for r, cs in CONFIGS.items() for c in cs],
                         ids=lambda x: x if isinstance(x, str) else x['type'])
def test_builds_from_config_dict(registry, cfg):
    init_default_scope('mmdet')
    obj = getattr(mmdet_registry, registry).build(dict(cfg))
    assert type(obj).__name__ == cfg['type']


def test_dataset_builds_and_category_names_match(synthetic_converted):
    init_default_scope('mmdet')
    ann = synthetic_converted / 'annotations' / 'train.json'
    ds = mmdet_registry.DATASETS.build(dict(
        type='DeepLesionDataset', data_root=str(synthetic_converted), ann_file=str(ann),
        data_prefix=dict(img='Images_png/'), pipeline=[]))
    categories = [c['name'] for c in json.loads(ann.read_text())['categories']]
    assert tuple(categories) == ds.metainfo['classes'] == ('lesion', )
    assert len(ds) == len(json.loads(ann.read_text())['images'])  # nothing filtered out
