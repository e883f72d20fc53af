import json
import os
import pickle

import numpy as np
import pytest

from mmlesion.datasets.converters.annotation_release import (
    AnnotationFormatError,
    detect_format,
    import_release,
    load_lens,
    load_lh_2d,
    load_lh_3d,
    load_series_info,
    main,
    to_coco,
)
from mmlesion.utils.safe_pickle import UnsafePickleError

f64 = np.float64


def _dump(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.fixture
def lh2d_file(tmp_path):
    # As in Revised-*.pkl: '.annot' keys, int relative z, rows of np.float64, 1-based x/y.
    obj = {
        '001344_01_01_012-024.annot': {
            6: [[f64(215.383), f64(176.983), f64(267.122), f64(220.374), f64(6.0), f64(6.0)]],
            0: [[f64(11.5), f64(21.0), f64(31.0), f64(41.0), f64(0.0), f64(0.0)],
                [f64(101.0), f64(201.0), f64(111.0), f64(221.0), f64(0.0), f64(0.0)]]},
        '000002_01_01_005-007.annot': {},
    }
    return _dump(tmp_path / 'Revised-Test9.pkl', obj)


@pytest.fixture
def lh3d_file(tmp_path):
    obj = {'000001_01_01_103-115': [
        [f64(11.0), f64(21.0), f64(31.0), f64(41.0), f64(-0.5), f64(3.5)],
        [f64(51.0), f64(61.0), f64(71.0), f64(91.0), f64(10.0), f64(12.5)],
        [f64(5.0), f64(6.0), f64(9.0), f64(10.0), f64(4.0), f64(4.0)]]}
    return _dump(tmp_path / '3D-Box.pkl', obj)


@pytest.fixture
def lens_file(tmp_path):
    obj = {'val': {'002666_01_01_001-030': np.array([[120., 229., 1., 155., 266., 6.],
                                                     [256., 178., 13., 282., 208., 18.]])},
           'test': {'001344_01_01_012-024': np.array([[211., 166., 13., 270., 221., 22.]]),
                    '000003_01_01_040-050': np.zeros((0, 6))}}
    return _dump(tmp_path / 'DeepLesion_manual_1K_test_release.pkl', obj, protocol=4)


def test_lh_2d_frames(lh2d_file):
    boxes = load_lh_2d(lh2d_file)
    assert sorted(boxes) == ['000002_01_01_005-007', '001344_01_01_012-024']
    assert boxes['000002_01_01_005-007'] == []
    entries = boxes['001344_01_01_012-024']
    # z_rel 0 -> 12, z_rel 6 -> 18 (absolute); x/y - 1.
    assert [z for z, _ in entries] == [12, 12, 18]
    np.testing.assert_array_equal(entries[0][1], [10.5, 20.0, 30.0, 40.0])
    np.testing.assert_array_equal(entries[1][1], [100.0, 200.0, 110.0, 220.0])
    assert entries[2][1].tolist() == [214.383, 175.983, 266.122, 219.374]


def test_lh_3d_half_integers_are_clamped(lh3d_file):
    boxes, n_clamped = load_lh_3d(lh3d_file, return_num_clamped=True)
    arr = boxes['000001_01_01_103-115']
    assert arr.shape == (3, 6) and n_clamped == 2
    np.testing.assert_array_equal(arr[0], [10, 20, 30, 40, 103, 106.5])  # -0.5 -> start
    np.testing.assert_array_equal(arr[1], [50, 60, 70, 90, 113, 115])  # 12.5 -> end (115)
    np.testing.assert_array_equal(arr[2], [4, 5, 8, 9, 107, 107])


def test_lens_absolute_z_and_column_order(lens_file):
    val = load_lens(lens_file, 'val')
    np.testing.assert_array_equal(val['002666_01_01_001-030'],
                                  [[119, 228, 154, 265, 1, 6], [255, 177, 281, 207, 13, 18]])
    test = load_lens(lens_file, 'test')
    assert test['000003_01_01_040-050'].shape == (0, 6)
    np.testing.assert_array_equal(test['001344_01_01_012-024'], [[210, 165, 269, 220, 13, 22]])
    assert len(load_lens(lens_file, None)) == 3
    with pytest.raises(AnnotationFormatError, match="no subset 'train'"):
        load_lens(lens_file, 'train')


def test_detect_format(lh2d_file, lh3d_file, lens_file):
    from mmlesion.utils.safe_pickle import load_pickle
    assert detect_format(load_pickle(lh2d_file)) == 'lh2d'
    assert detect_format(load_pickle(lh3d_file)) == 'lh3d'
    assert detect_format(load_pickle(lens_file)) == 'lens'
    with pytest.raises(AnnotationFormatError, match='cannot tell the release format'):
        detect_format({'a': 1})


def test_to_coco_2d(lh2d_file):
    coco = to_coco(load_lh_2d(lh2d_file), source='revised', split='test')
    assert [v['id'] for v in coco['volumes']] == ['000002_01_01_005-007', '001344_01_01_012-024']
    assert all(v['complete'] is True for v in coco['volumes'])
    assert coco['volumes'][0]['spacing'] is None and coco['volumes'][0]['slice_range'] == [5, 7]
    assert [(im['id'], im['file_name'], im['slice_index']) for im in coco['images']] == [
        (1, '001344_01_01/012.png', 12),
        (2, '001344_01_01/018.png', 18)]
    im = coco['images'][0]
    assert (im['width'], im['height'], im['size_known']) == (512, 512, False)
    assert (im['volume_id'], im['slice_range'], im['split']) == ('001344_01_01_012-024', [12, 24],
                                                                 'test')
    assert (im['patient_index'], im['study_index'], im['series_id']) == (1344, 1, 1)
    a = coco['annotations']
    assert [x['image_id'] for x in a] == [1, 1, 2]
    assert a[0]['bbox'] == [10.5, 20.0, 19.5, 20.0] and a[0]['area'] == 390.0
    assert (a[0]['source'], a[0]['lesion_type'], a[0]['recist'], a[0]['csv_row']) == \
        ('revised', -1, None, None)
    assert a[2]['bbox'] == [214.383, 175.983, 51.739, 43.391]


def test_to_coco_3d_uses_centre_slice(lh3d_file):
    coco = to_coco(load_lh_3d(lh3d_file), source='revised', split='test')
    # centres 104.75 -> 105, 114 -> 114, 107 -> 107
    assert [im['slice_index'] for im in coco['images']] == [105, 107, 114]
    by_img = {im['id']: im['slice_index'] for im in coco['images']}
    a = {by_img[x['image_id']]: x for x in coco['annotations']}
    assert a[105]['bbox_3d'] == [10.0, 20.0, 30.0, 40.0, 103.0, 106.5]
    assert a[105]['bbox'] == [10.0, 20.0, 20.0, 20.0]
    assert a[114]['bbox_3d'][4:] == [113.0, 115.0]


def test_series_info_fills_size(tmp_path, lh2d_file, dl_row, write_dl_info):
    csv_path = write_dl_info(tmp_path / 'DL_info.csv', [
        dl_row(patient=1344, key=18, slice_range='12, 24', size='384, 384',
               box='11, 21, 31, 51', recist='16, 26, 26, 46, 18, 40, 24, 30',
               spacing='0.7, 0.7, nan', split='3')])
    info = load_series_info(csv_path)
    assert info['001344_01_01']['width'] == 384
    coco = to_coco(load_lh_2d(lh2d_file), source='revised', split='test', series_info=info)
    im = coco['images'][0]
    assert (im['width'], im['height'], im['size_known']) == (384, 384, True)
    assert im['spacing'] == [0.7, 0.7, None] and im['slice_interval'] is None
    assert im['dicom_window'] == [-175, 275]
    assert coco['volumes'][1]['spacing'] == [0.7, 0.7, None]
    assert coco['images'][0]['age'] == 71
    # the converted JSON serves as well
    from mmlesion.datasets.converters.deeplesion import convert_deeplesion
    convert_deeplesion(None, str(tmp_path / 'conv'), csv_path=str(csv_path),
                       check_images=False, log=None)
    assert load_series_info(tmp_path / 'conv')['001344_01_01']['width'] == 384
    assert load_series_info(tmp_path / 'conv' / 'test.json')['001344_01_01']['height'] == 384


def test_import_release_defaults(lh2d_file, lens_file, tmp_path):
    coco, s = import_release(lh2d_file)
    assert (s['format'], s['source'], s['complete'], s['volumes'], s['boxes']) == \
        ('lh2d', 'revised', True, 2, 3)
    assert s['empty_volumes'] == 1 and {v['split'] for v in coco['volumes']} == {'test'}
    coco, s = import_release(lens_file)
    assert s['volumes_per_split'] == {'val': 1, 'test': 2} and s['boxes'] == 3
    recist = _dump(tmp_path / 'RECIST-Box-Valid.pkl',
                   {'000001_01_01_001-003': {1: [[2.0, 2.0, 5.0, 5.0, 1.0, 1.0]]}})
    coco, s = import_release(recist)
    # original RECIST marks are not a complete annotation
    assert s['source'] == 'recist' and s['complete'] is False
    assert coco['volumes'][0]['split'] == 'val'
    other = _dump(tmp_path / 'boxes.pkl', {'000001_01_01_001-003': {}})
    with pytest.raises(ValueError, match='cannot tell the annotation source'):
        import_release(other)
    with pytest.raises(ValueError, match='cannot tell the split'):
        import_release(other, source='harvested')
    coco, _ = import_release(other, source='harvested', split='train')
    assert coco['volumes'][0]['complete'] is False


def test_cli(tmp_path, lens_file, capsys):
    out = tmp_path / 'lens_val.json'
    assert main(['--pkl', str(lens_file), '--out', str(out), '--subset', 'val']) == 0
    data = json.loads(out.read_text())
    assert len(data['volumes']) == 1 and len(data['annotations']) == 2
    assert data['volumes'][0]['split'] == 'val' and data['annotations'][0]['source'] == 'lens'
    assert 'volumes: 1 (0 empty' in capsys.readouterr().out
    assert main(['--pkl', str(lens_file), '--out', str(out), '--format', 'lh2d']) == 1
    assert '--format lh2d given, but the file looks like lens' in capsys.readouterr().err


@pytest.mark.parametrize('obj,match', [
    ({'001344_01_01_012-024': {13: [[1, 1, 2, 2, 13, 13]]}},
     r'expected an integer relative slice in 0..12, got 13'),
    ({'001344_01_01_012-024': {3: [[1, 1, 2, 2, 4, 4]]}}, 'differ from the slice key'),
    ({'001344_01_01_012-024': {3: [[5, 1, 2, 2, 3, 3]]}}, 'expected x1 < x2 and y1 < y2'),
    ({'001344_01_01_012-024': {3: [[1, 1, 2, 2]]}}, r'expected an n x 6 box list'),
    ({'1344_012-024': {3: []}}, 'not a DeepLesion sub-volume key'),
])
def test_malformed_2d_names_file_and_key(tmp_path, obj, match):
    path = _dump(tmp_path / 'Revised-X.pkl', obj)
    with pytest.raises(AnnotationFormatError, match=match) as err:
        load_lh_2d(path)
    assert str(path) in str(err.value)


def test_3d_box_far_outside_is_an_error(tmp_path):
    path = _dump(tmp_path / '3D-Box.pkl', {'000001_01_01_103-115': [[1, 1, 2, 2, 14, 15]]})
    with pytest.raises(AnnotationFormatError, match=r"outside the sub-volume's slices 103..115"):
        load_lh_3d(path)


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo hi', ))


def test_unsafe_pickle_refused_without_running(tmp_path, capfd):
    path = _dump(tmp_path / 'Revised-Evil.pkl', {'001344_01_01_012-024.annot': {0: _Evil()}})
    for load in (load_lh_2d, load_lh_3d, import_release):
        with pytest.raises(UnsafePickleError, match='system'):
            load(path)
    assert main(['--pkl', str(path), '--out', str(tmp_path / 'o.json')]) == 1
    captured = capfd.readouterr()
    assert 'hi' not in captured.out.split()
    assert 'refusing to load global' in captured.err
    assert not (tmp_path / 'o.json').exists()


# ---------------------------------------------------------------------------------------------
# the real releases

REAL_COUNTS = [
    ('lesion_harvester/RECIST-Box-Test.pkl', None, 3005, 4912),
    ('lesion_harvester/RECIST-Box-Valid.pkl', None, 3001, 4885),
    ('lesion_harvester/Revised-Train744.pkl', None, 744, 3033),
    ('lesion_harvester/Revised-Train100.pkl', None, 100, 420),
    ('lesion_harvester/Revised-Test1071.pkl', None, 1071, 3665),
    ('lesion_harvester/3D-Box.pkl', None, 272, 874),
    ('lens_manual_1k/DeepLesion_manual_1K_test_release.pkl', 'val', 200, 1292),
    ('lens_manual_1k/DeepLesion_manual_1K_test_release.pkl', 'test', 800, 4155),
]


@pytest.mark.parametrize('rel,subset,n_volumes,n_boxes', REAL_COUNTS)
def test_real_release_counts(shared_data_dir, rel, subset, n_volumes, n_boxes):
    coco, s = import_release(shared_data_dir / rel, subset=subset)
    assert (s['volumes'], s['boxes']) == (n_volumes, n_boxes)
    assert (len(coco['volumes']), len(coco['annotations'])) == (n_volumes, n_boxes)
    expected_source = 'lens' if 'lens' in rel else ('recist' if 'RECIST' in rel else 'revised')
    assert {a['source'] for a in coco['annotations']} == {expected_source}
    assert all(v['complete'] is (expected_source != 'recist') for v in coco['volumes'])
    for im in coco['images']:
        lo, hi = im['slice_range']
        assert lo <= im['slice_index'] <= hi
    if subset == 'test':
        assert s['empty_volumes'] == 31


def test_real_release_frames(shared_data_dir):
    lh = shared_data_dir / 'lesion_harvester'
    revised = load_lh_2d(lh / 'Revised-Test1071.pkl')
    # pickle: '001344_01_01_012-024.annot': {6: [[215.383, 176.983, 267.122, 220.374, 6, 6]]}
    (z, box), = revised['001344_01_01_012-024']
    assert z == 18
    assert box.tolist() == [214.383, 175.983, 266.122, 219.374]

    boxes3d, n_clamped = load_lh_3d(lh / '3D-Box.pkl', return_num_clamped=True)
    assert n_clamped == 12
    for key, arr in boxes3d.items():
        start, end = (int(v) for v in key.rsplit('_', 1)[1].split('-'))
        assert (arr[:, 4] >= start).all() and (arr[:, 5] <= end).all()
    # pickle '000001_01_01_103-115' box 0: [224.1128..., 92.5040..., ..., 5.0, 6.0]
    np.testing.assert_allclose(boxes3d['000001_01_01_103-115'][0],
                               [223.11279125, 91.50398222, 240.87335206, 112.86161863, 108, 109])

    lens = load_lens(shared_data_dir / 'lens_manual_1k' /
                     'DeepLesion_manual_1K_test_release.pkl', 'val')
    # LENS: [120, 229, 1, 155, 266, 6] with absolute z
    np.testing.assert_array_equal(lens['002666_01_01_001-030'][0], [119, 228, 154, 265, 1, 6])


def test_real_release_with_dl_info(shared_data_dir, tmp_path):
    out = tmp_path / 'rt.json'
    assert main(['--pkl', str(shared_data_dir / 'lesion_harvester' / 'RECIST-Box-Test.pkl'),
                 '--out', str(out), '--dl-info',
                 str(shared_data_dir / 'deeplesion_dl_info_sample' / 'DL_info.csv')]) == 0
    data = json.loads(out.read_text())
    known = [im for im in data['images'] if im['size_known']]
    assert len({im['volume_id'] for im in known}) == 17
    im = next(im for im in known if im['series'] == '000090_02_01')
    # DL_info.csv: "0.804688, 0.804688, 2", "512, 512", "-175, 275" for this series
    assert im['spacing'] == [0.804688, 0.804688, 2.0] and im['slice_interval'] == 2.0
    assert (im['width'], im['height'], im['dicom_window']) == (512, 512, [-175, 275])


def test_lh_3d_z_margin_and_clamp_by_hand():
    # 13 slices 103..115 (relative 0..12); the release has boxes from -0.5 and past the end
    boxes = {'000001_01_01_103-115.annot': [[10, 20, 30, 40, -0.5, 13.5]]}
    key = '000001_01_01_103-115'
    out, n = load_lh_3d(boxes, return_num_clamped=True)  # slice indices (import)
    np.testing.assert_allclose(out[key], [[9, 19, 29, 39, 103, 115]])
    assert n == 1
    np.testing.assert_allclose(load_lh_3d(boxes, z_margin=0.5)[key][0, 4:], [102.5, 115.5])
    out, n = load_lh_3d(boxes, clamp=False, return_num_clamped=True)
    np.testing.assert_allclose(out[key][0, 4:], [102.5, 116.5])
    assert n == 0
    with pytest.raises(AnnotationFormatError, match='outside the sub-volume'):
        load_lh_3d({key: [[10, 20, 30, 40, 14, 15]]}, clamp=False)
