import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data():
    """The real annotation releases: $MMLESION_SHARED_DATA, else ../shared/data beside the repo."""
    env = os.environ.get('MMLESION_SHARED_DATA')
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / 'shared' / 'data')
    for c in candidates:
        if (c / 'lesion_harvester').is_dir():
            return c
    return None


@pytest.fixture(scope='session', autouse=True)
def private_cache_dir(tmp_path_factory):
    """Tests record checkpoints (and anything else cached) in a temporary cache folder, never in
    the user's ``~/.cache/mmlesion`` (subprocesses inherit it)."""
    path = tmp_path_factory.mktemp('mmlesion_cache')
    saved = os.environ.get('MMLESION_CACHE_DIR')
    os.environ['MMLESION_CACHE_DIR'] = str(path)
    yield path
    if saved is None:
        os.environ.pop('MMLESION_CACHE_DIR', None)
    else:
        os.environ['MMLESION_CACHE_DIR'] = saved


@pytest.fixture(scope='session')
def shared_data_dir():
    path = find_shared_data()
    if path is None:
        pytest.skip('real DeepLesion annotation releases not found: set MMLESION_SHARED_DATA or '
                    'place them at ../shared/data beside the repository')
    return path


@pytest.fixture(scope='session')
def real_ct_dir(shared_data_dir):
    """``shared/data/real_ct`` (lung1/lung2 image and label NRRD); skips when absent."""
    folder = os.path.join(str(shared_data_dir), 'real_ct')
    if not os.path.isfile(os.path.join(folder, 'lung2_label.nrrd')):
        pytest.skip(f'real CT volumes (lung1/lung2 NRRD) not found in {folder}')
    return folder


@pytest.fixture(scope='session')
def synthetic_converted(tmp_path_factory):
    """A small synthetic DeepLesion-format dataset (10 sub-volumes, 128 px), converted to JSON.

    Returns the data root; ``annotations/{train,val,test}.json`` lie under it.
    """
    from mmlesion.datasets.converters.deeplesion import convert_deeplesion
    from mmlesion.synthetic import generate_dataset
    root = tmp_path_factory.mktemp('synthetic_converted')
    generate_dataset(str(root), num_volumes=10, seed=3, image_size=128)
    convert_deeplesion(str(root), str(root / 'annotations'), log=lambda *a, **k: None)
    return root


def make_tiny_detector_cfg():
    """A fresh config dict of a small MSCN (``LesionCenterNet``, DenseNet25D blocks (2, 3, 4),
    growth 8): the real components at a few thousand parameters, for fast model tests.
    Channels: 16 + 2*8 = 32 -> 16 + 3*8 = 40 -> 20 + 4*8 = 52."""
    return dict(
        type='LesionCenterNet',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[50.0], std=[1.0],
                               bgr_to_rgb=False, pad_size_divisor=16),
        backbone=dict(type='DenseNet25D', num_slice_groups=3, growth_rate=8,
                      block_config=(2, 3, 4), bn_size=2, num_init_features=16),
        neck=dict(type='LesionFPNUpsample', in_channels=[32, 40, 52], out_channels=16,
                  feat_channels=16),
        bbox_head=dict(type='CenterNetHNSLHead', num_classes=1, in_channels=16,
                       feat_channels=16),
        test_cfg=dict(topk=10, local_maximum_kernel=3, max_per_img=10, flip_test=False))


@pytest.fixture
def tiny_detector_cfg():
    """:func:`make_tiny_detector_cfg`, fresh for each test."""
    return make_tiny_detector_cfg()


@pytest.fixture(scope='session')
def make_tiny_detector():
    """:func:`make_tiny_detector_cfg` itself, for module-scoped fixtures (they cannot use the
    function-scoped ``tiny_detector_cfg``)."""
    return make_tiny_detector_cfg


# the 9-slice test pipeline of the paper's configs, at 0.8 mm/px
VOLUME_SCAN_PIPELINE = (
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=(-1024, 3071)),
    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
)


@pytest.fixture
def volume_scan_config():
    """Factory ``make(root, work_dir, model, metrics, **loop) -> dict``: a config that scans the
    synthetic test split of ``root`` with ``VolumeScanTestLoop(batch_size=4, **loop)``."""
    import copy

    def make(root, work_dir, model, metrics, **loop):
        loop.setdefault('batch_size', 4)
        return dict(
            default_scope='mmdet', model=model, work_dir=str(work_dir), log_level='WARNING',
            test_dataloader=dict(
                batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(type='DeepLesionDataset', data_root=str(root) + '/',
                             ann_file='annotations/test.json',
                             data_prefix=dict(img='Images_png/'), test_mode=True,
                             pipeline=copy.deepcopy(list(VOLUME_SCAN_PIPELINE)))),
            test_cfg=dict(type='VolumeScanTestLoop', **loop),
            test_evaluator=metrics)

    return make


@pytest.fixture
def complete_gt_pickle(synthetic_converted, tmp_path):
    """All completely annotated synthetic volumes (V_M, V_H^test, val, test) in one LH pickle:
    ``(path, sorted keys)``."""
    import glob

    from mmlesion.utils.fileio import atomic_dump_pickle
    from mmlesion.utils.safe_pickle import load_pickle
    merged = {}
    for name in sorted(glob.glob(str(synthetic_converted / 'ground_truth' / 'Revised-*.pkl'))):
        merged.update(load_pickle(name))
    path = tmp_path / 'Revised-All.pkl'
    atomic_dump_pickle(merged, path, protocol=2)
    return str(path), sorted(k[:-len('.annot')] for k in merged)


@pytest.fixture
def one_torch_thread():
    """Tiny models: one intra-op thread (two spin-wait for each other on a busy shared CPU,
    measured 20x slower) and the same numbers on any machine."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
