"""The real-CT fixture: real CT volumes (pyradiomics lung1/lung2 NRRD + masks) in DeepLesion's
format.  These tests skip when the shared ``real_ct/`` folder is absent (the NRRD reader and the
mask geometry are tested on hand-made volumes in test_nrrd_volume.py and test_lesion_masks.py).
"""
import csv
import json
import os

import numpy as np
import pytest

from mmlesion.datasets.converters.deeplesion import convert_deeplesion
from mmlesion.datasets.png_codec import PNG_HU_OFFSET, read_uint16_png
from mmlesion.datasets.recist import recist_from_mask
from mmlesion.synthetic.realct import write_realct_fixture
from mmlesion.utils.safe_pickle import load_pickle

nrrd = pytest.importorskip('nrrd')

# Facts of the files (shared/data/README.md, and counted on the masks by hand).
LUNG1 = dict(key='009001_01_01_001-048', series='009001_01_01', z=(32, 34), voxels=837,
             areas=(161, 347, 329), key_z=33, spacing=0.5703125, extent=(206, 347, 229, 372))
LUNG2 = dict(key='009002_01_01_001-061', series='009002_01_01', z=(15, 25), voxels=24644,
             key_z=22, spacing=0.6269531)


@pytest.fixture(scope='module')
def real_ct(real_ct_dir):
    return real_ct_dir


@pytest.fixture(scope='module')
def fixture_dir(real_ct, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('realct') / 'fx')
    summary = write_realct_fixture(out, real_ct)
    return dict(out=out, summary=summary, real_ct=real_ct)


def _raw_mask(real_ct, name):
    """The NRRD mask as pynrrd gives it, (x, y, z), independent of read_nrrd_volume."""
    data, _ = nrrd.read(os.path.join(real_ct, f'{name}_label.nrrd'))
    return data > 0


def _png_hu(root, series, slice_index):
    """Integer HU of a written slice (raw - 32768, exact)."""
    raw = read_uint16_png(os.path.join(root, 'Images_png', series, f'{slice_index:03d}.png'))
    return raw.astype(np.int32) - PNG_HU_OFFSET


def _boundary(mask):
    pad = np.pad(mask, 1)
    inner = pad[1:-1, 1:-1] & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    ys, xs = np.nonzero(mask & ~inner)
    return np.stack([xs, ys], axis=1).astype(np.float64)


# -------------------------------------------------------------------------- real CT fixture
def test_fixture_png_equals_nrrd_voxels(fixture_dir):
    out, real_ct = fixture_dir['out'], fixture_dir['real_ct']
    for name, facts, n in (('lung1', LUNG1, 48), ('lung2', LUNG2, 61)):
        data, _ = nrrd.read(os.path.join(real_ct, f'{name}_image.nrrd'))
        assert data.shape == (512, 512, n) and data.dtype == np.int16
        files = sorted(os.listdir(os.path.join(out, 'Images_png', facts['series'])))
        assert files == [f'{k:03d}.png' for k in range(1, n + 1)]
        for z in range(n):  # NRRD z -> slice z + 1; rows = y, columns = x
            np.testing.assert_array_equal(_png_hu(out, facts['series'], z + 1), data[:, :, z].T)


def test_fixture_dl_info_rows(fixture_dir, real_ct):
    with open(os.path.join(fixture_dir['out'], 'DL_info.csv'), newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row, name, facts, split in ((rows[0], 'lung1', LUNG1, '3'), (rows[1], 'lung2', LUNG2, '1')):
        raw = _raw_mask(real_ct, name)
        zs = np.flatnonzero(raw.any(axis=(0, 1)))
        assert (zs.min(), zs.max()) == facts['z']
        assert int(raw.sum()) == facts['voxels']
        areas = raw.sum(axis=(0, 1))
        assert int(np.argmax(areas)) == facts['key_z']
        key = facts['key_z'] + 1  # 1-based DeepLesion slice index
        assert row['File_name'] == f"{facts['series']}_{key:03d}.png"
        assert int(row['Key_slice_index']) == key
        assert facts['z'][0] + 1 <= key <= facts['z'][1] + 1
        assert row['Slice_range'] == f"1, {raw.shape[2]}" and row['Train_Val_Test'] == split
        assert row['Spacing_mm_px_'] == '%g, %g, 5' % (facts['spacing'], facts['spacing'])
        assert row['Image_size'] == '512, 512' and row['Possibly_noisy'] == '0'
        assert row['Coarse_lesion_type'] == ('-1' if split == '1' else '5')
        recist1 = np.array([float(v) for v in row['Measurement_coordinates'].split(', ')])
        box1 = [float(v) for v in row['Bounding_boxes'].split(', ')]
        mask = raw[:, :, facts['key_z']].T
        r = recist_from_mask(mask, (facts['spacing'],) * 2)
        np.testing.assert_allclose(recist1 - 1, r['long_axis'] + r['short_axis'], atol=5e-4)
        p = recist1.reshape(4, 2)
        # DeepLesion's box: the RECIST extent padded by 5 px, 1-based like the coordinates.
        np.testing.assert_allclose(box1, [p[:, 0].min() - 5, p[:, 1].min() - 5,
                                          p[:, 0].max() + 5, p[:, 1].max() + 5], atol=1e-3)
        # Long axis = the longest distance between mask pixel centres (brute force on the
        # boundary); short axis perpendicular to it and not longer.
        b = _boundary(mask)
        longest = np.sqrt(((b[:, None] - b[None]) ** 2).sum(-1)).max()
        long_v, short_v = p[1] - p[0], p[3] - p[2]
        assert np.hypot(*long_v) == pytest.approx(longest, abs=1e-3)
        long_px = float(row['Lesion_diameters_Pixel_'].split(', ')[0])
        assert long_px == pytest.approx(longest, abs=1e-3)
        assert abs(long_v @ short_v) <= 0.01 * np.hypot(*long_v) * np.hypot(*short_v)
        assert 0 < np.hypot(*short_v) <= np.hypot(*long_v)


def test_fixture_ground_truth(fixture_dir, real_ct):
    gt = os.path.join(fixture_dir['out'], 'ground_truth')
    with open(os.path.join(gt, 'truth.json')) as f:
        truth = json.load(f)
    vols = {v['key']: v for v in truth['volumes']}
    assert set(vols) == {LUNG1['key'], LUNG2['key']}
    m2d = load_pickle(os.path.join(gt, 'Mask-Box-2D.pkl'))
    m3d = load_pickle(os.path.join(gt, 'Mask-Box-3D.pkl'))
    x1, y1, x2, y2 = LUNG1['extent']
    # 1-based x/y, z relative to slice 1 (= NRRD z).
    assert m3d[LUNG1['key']] == [[x1 + 1, y1 + 1, x2 + 1, y2 + 1, 32, 34]]
    for name, facts in (('lung1', LUNG1), ('lung2', LUNG2)):
        raw = _raw_mask(real_ct, name)
        per_z = m2d[facts['key']]
        assert sorted(per_z) == list(range(facts['z'][0], facts['z'][1] + 1))
        for z, boxes in per_z.items():
            xs, ys = np.nonzero(raw[:, :, z])
            assert boxes == [[xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1, z, z]]
            assert all(isinstance(v, np.float64) for v in boxes[0])
        les, = vols[facts['key']]['lesions']
        assert les['origin'] == 'real' and les['marked'] and les['organ'] == 'lung'
        assert les['key_slice'] == facts['key_z'] + 1 and les['num_voxels'] == facts['voxels']
        assert [s['slice'] for s in les['slices']] == list(range(facts['z'][0] + 1,
                                                                 facts['z'][1] + 2))
    assert vols[LUNG1['key']]['split'] == 'test' and vols[LUNG2['key']]['role'] == 'V_M'
    assert load_pickle(os.path.join(gt, 'Revised-Test.pkl'))[LUNG1['key'] + '.annot'].keys() == {33}
    box3d = load_pickle(os.path.join(gt, '3D-Box.pkl'))[LUNG1['key']]
    assert len(box3d) == 1 and box3d[0][4:] == [32, 34]
    assert fixture_dir['summary']['slices_written'] == 48 + 61


def test_fixture_converts_and_loads(fixture_dir, tmp_path):
    from mmlesion.datasets.transforms import LoadMultiSliceFromFile
    out = fixture_dir['out']
    s = convert_deeplesion(out, str(tmp_path / 'ann'), log=None)
    assert s['rows_read'] == 2 and s['rows_skipped'] == 0 and s['lesions'] == 2
    assert s['rows_per_split'] == {'train': 1, 'val': 0, 'test': 1} and s['missing_slices'] == 0
    with open(tmp_path / 'ann' / 'test.json') as f:
        test = json.load(f)
    im, = test['images']
    assert im['file_name'] == '009001_01_01/034.png' and im['slice_range'] == [1, 48]
    assert im['spacing'] == [0.570312, 0.570312, 5.0] and im['volume_id'] == LUNG1['key']
    with open(os.path.join(out, 'ground_truth', 'truth.json')) as f:
        les = json.load(f)['volumes'][0]['lesions'][0]
    x, y, w, h = test['annotations'][0]['bbox']
    np.testing.assert_allclose([x, y, x + w, y + h], les['box2d'], atol=1e-9)

    data, _ = nrrd.read(os.path.join(fixture_dir['real_ct'], 'lung1_image.nrrd'))
    loader = LoadMultiSliceFromFile(num_slices=3, window_hu=None, slice_interval_mm=2.0)
    img = loader(dict(img_path=os.path.join(out, 'Images_png', im['file_name']),
                      slice_index=34, slice_range=[1, 48], slice_interval=5.0))['img']
    key, below, above = (data[:, :, z].T.astype(np.float64) for z in (33, 32, 34))
    # 2 mm neighbours of 5 mm slices: 0.6 key + 0.4 neighbour; the key channel is exact.
    np.testing.assert_array_equal(img[..., 1], key)
    np.testing.assert_allclose(img[..., 0], 0.6 * key + 0.4 * below, atol=1e-3)
    np.testing.assert_allclose(img[..., 2], 0.6 * key + 0.4 * above, atol=1e-3)


def test_stacking_mask_boxes_gives_one_tracklet_per_lesion(fixture_dir):
    from mmlesion.stacking import stack_volume
    from mmlesion.structures import box_iou_2d
    m2d = load_pickle(os.path.join(fixture_dir['out'], 'ground_truth', 'Mask-Box-2D.pkl'))
    for facts in (LUNG1, LUNG2):
        # 1-based extreme pixel centres -> 0-based continuous corners, score 1, absolute z.
        dets = {z + 1: np.array([[b[0] - 1, b[1] - 1, b[2], b[3], 1.0] for b in boxes])
                for z, boxes in m2d[facts['key']].items()}
        zs = sorted(dets)
        ious = [float(box_iou_2d(dets[a][:, :4], dets[b][:, :4], plus_one=False)[0, 0])
                for a, b in zip(zs[:-1], zs[1:])]
        # A lesion's tips overlap their neighbours far less than the paper's 0.8 link IoU on
        # 5 mm slices (lung1: 0.39 and 0.69); link below the smallest overlap.
        thr = min(ious) - 0.05
        tracklets = stack_volume(dets, (512, 512), score_thr=0.1, link_iou=thr, fuse_iou=thr)
        assert len(tracklets) == 1
        t = tracklets[0]
        assert t.z.tolist() == list(range(facts['z'][0] + 1, facts['z'][1] + 2))
        assert t.score == 1.0 and not t.filled.any()
    lung1_ious = [0.39, 0.69]
    dets = {z + 1: np.array([[b[0] - 1, b[1] - 1, b[2], b[3], 1.0] for b in boxes])
            for z, boxes in m2d[LUNG1['key']].items()}
    got = [float(box_iou_2d(dets[z][:, :4], dets[z + 1][:, :4], plus_one=False)[0, 0])
           for z in (33, 34)]
    np.testing.assert_allclose(got, lung1_ious, atol=0.01)


def test_fixture_cli_refuses_existing(fixture_dir, capsys):
    from mmlesion.cli.make_realct_fixture import main
    assert main(['--out', fixture_dir['out'], '--real-ct-dir', fixture_dir['real_ct'],
                 '--quiet']) == 1
    assert 'already holds a dataset' in capsys.readouterr().err
