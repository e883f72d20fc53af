"""ProposalPatchDataset on hand-built DeepLesion-format PNGs: one decode per PNG per volume,
label filtering, views and cubes, flips, and clear errors for bad proposal files."""
import json
import os

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet.registry import DATASETS, TRANSFORMS
from mmlesion.structures import Tracklet, VolumeInfo
from mmlesion.structures.proposals import Proposal, ProposalSet

KEY_A = '000001_01_01_010-017'  # 8 slices
KEY_B = '000002_01_01_003-007'  # 5 slices
SERIES = {KEY_A: ('000001_01_01', range(10, 18)), KEY_B: ('000002_01_01', range(3, 8))}


def write_pngs(root):
    for series, slices in SERIES.values():
        os.makedirs(root / 'Images_png' / series, exist_ok=True)
        for z in slices:
            hu = np.full((64, 64), -500, np.int32)
            hu[20:30, 25:40] = 40 + z  # a lesion
            cv2.imwrite(str(root / 'Images_png' / series / f'{z:03d}.png'),
                        (hu + 32768).astype(np.uint16))


def trk(z0, z1, box, score):
    z = np.arange(z0, z1 + 1)
    return Tracklet(z, np.array([list(box) + [score]] * z.size, dtype=np.float64))


def make_proposals(path, spacing=(0.8, 0.8, 2.5)):
    vols = {k: VolumeInfo(k, s, (r.start, r.stop - 1), None if spacing is None else
                          list(spacing), None if spacing is None else spacing[2])
            for k, (s, r) in SERIES.items()}
    props = [Proposal(KEY_A, 0, trk(12, 14, [25, 20, 40, 30], 0.9), label=1),
             Proposal(KEY_A, 1, trk(15, 15, [2, 2, 12, 12], 0.4), label=0),
             Proposal(KEY_A, 2, trk(10, 11, [50, 50, 60, 60], 0.3), label=-1),
             Proposal(KEY_B, 0, trk(4, 6, [25, 20, 40, 30], 0.8), label=1),
             Proposal(KEY_B, 1, trk(3, 3, [40, 5, 50, 15], 0.2), label=0)]
    ProposalSet(vols, props).save(path)
    return str(path)


@pytest.fixture
def data(tmp_path):
    write_pngs(tmp_path)
    return tmp_path, make_proposals(tmp_path / 'proposals.json')


def build(root, ann, **kwargs):
    init_default_scope('mmdet')
    cfg = dict(type='ProposalPatchDataset', ann_file=ann, data_prefix=dict(img=str(
        root / 'Images_png')), patch_size=24, pipeline=[dict(type='PackLPCInputs')])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_one_decode_per_png_per_volume_in_test_order(data):
    root, ann = data
    ds = build(root, ann, test_mode=True, cache_volumes=1)
    assert len(ds) == 5
    items = [ds[i] for i in range(len(ds))]
    # proposals of a volume come together (key, then index), and each PNG was decoded once
    assert [(it['data_samples'].key, it['data_samples'].index) for it in items] == [
        (KEY_A, 0), (KEY_A, 1), (KEY_A, 2), (KEY_B, 0), (KEY_B, 1)]
    assert ds.reader.num_decoded == 8 + 5
    it = items[0]
    assert it['inputs'].shape == (3, 1, 24, 24)
    assert float(it['data_samples'].gt_label) == 1.0 and it['data_samples'].s_g == 0.9
    assert it['data_samples'].best_z == 12
    # the lesion (40 HU) is brighter than the -500 HU background at the patch centre
    assert it['inputs'][0, 0, 12, 12] > it['inputs'][0, 0, 1, 1]


def test_training_drops_unknown_labels_and_cube_mode(data):
    root, ann = data
    ds = build(root, ann, filter_cfg=dict(drop_unknown=True))
    assert len(ds) == 4 and sorted(ds.get_data_info(i)['label'] for i in range(4)) == [0, 0, 1, 1]
    assert [ds.get_cat_ids(i) for i in range(4)] == [[0], [], [0], []]
    cube = build(root, ann, mode='cube', patch_size=(8, 12, 12), views=('axial', ))
    assert cube[0]['inputs'].shape == (1, 8, 12, 12)
    axial = build(root, ann, views=('axial', ))
    assert axial[0]['inputs'].shape == (1, 1, 24, 24)
    with pytest.raises(ValueError, match='drop_unknown'):
        build(root, ann, filter_cfg=dict(min_size=3))


def test_patch_cache_skips_decoding(data):
    root, ann = data
    ds = build(root, ann, cache_volumes=0, cache_patches=10)
    first = ds[0]['inputs']
    n = ds.reader.num_decoded
    again = ds[0]['inputs']
    assert ds.reader.num_decoded == n
    np.testing.assert_allclose(again.numpy(), first.numpy(), atol=0.07)  # cached as float16


def test_flip_keeps_views_consistent():
    views = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    axes = (('y', 'x'), ('z', 'x'), ('z', 'y'))
    flip = TRANSFORMS.build(dict(type='RandomFlipLPC', prob=1.0, axes=('x', )))
    out = flip(dict(img=views.copy(), patch_axes=axes))
    np.testing.assert_array_equal(out['img'][0], views[0][:, ::-1])  # axial: columns = x
    np.testing.assert_array_equal(out['img'][1], views[1][:, ::-1])  # coronal: columns = x
    np.testing.assert_array_equal(out['img'][2], views[2])  # sagittal shows no x
    out = TRANSFORMS.build(dict(type='RandomFlipLPC', prob=1.0, axes=('z', )))(
        dict(img=views.copy(), patch_axes=axes))
    np.testing.assert_array_equal(out['img'][0], views[0])
    np.testing.assert_array_equal(out['img'][2], views[2][::-1])  # sagittal: rows = z
    cube = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    out = TRANSFORMS.build(dict(type='RandomFlipLPC', prob=1.0, axes=('y', )))(
        dict(img=cube, patch_axes=('z', 'y', 'x')))
    np.testing.assert_array_equal(out['img'], cube[:, ::-1])
    with pytest.raises(ValueError, match='axes'):
        TRANSFORMS.build(dict(type='RandomFlipLPC', axes=('t', )))


def test_missing_volume_error_or_skip(data):
    root, ann = data
    os.rename(root / 'Images_png' / '000002_01_01', root / 'elsewhere')
    with pytest.raises(FileNotFoundError, match='proposals.json') as e:
        build(root, ann)
    assert KEY_B in str(e.value)
    ds = build(root, ann, missing_volumes='skip')
    assert len(ds) == 3 and {ds.get_data_info(i)['key'] for i in range(3)} == {KEY_A}


def test_bad_proposal_files_name_the_file(tmp_path):
    write_pngs(tmp_path)
    empty = tmp_path / 'empty.json'
    ProposalSet({KEY_A: VolumeInfo(KEY_A, '000001_01_01', (10, 17))}).save(empty)
    with pytest.raises(ValueError, match='empty.json: the proposal file has no proposal'):
        build(tmp_path, str(empty))
    truncated = tmp_path / 'cut.json'
    text = open(make_proposals(tmp_path / 'full.json')).read()
    truncated.write_text(text[:100])
    with pytest.raises(ValueError, match='cut.json: not a complete JSON'):
        build(tmp_path, str(truncated))
    unlabelled = tmp_path / 'unlabelled.json'
    raw = json.loads(text)
    for v in raw['volumes']:
        for p in v['proposals']:
            p['label'] = -1
    unlabelled.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match='no proposal with a known label'):
        build(tmp_path, str(unlabelled), filter_cfg=dict(drop_unknown=True))
    no_spacing = make_proposals(tmp_path / 'nospacing.json', spacing=None)
    with pytest.raises(ValueError, match='nospacing.json'):
        build(tmp_path, no_spacing)
