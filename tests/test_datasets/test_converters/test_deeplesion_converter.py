import json
import math

import pytest

from mmlesion.datasets.converters.deeplesion import convert_deeplesion, main
from mmlesion.datasets.converters.dl_info import DLInfoError


def _strict_json(path):
    def refuse(name):
        raise AssertionError(f'{path} holds {name}, which is not JSON')
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


@pytest.fixture
def quirky_root(tmp_path, dl_row, write_dl_info, write_slices):
    """A hand-written DeepLesion folder with the real data's quirks.

    Rows (1-based, x/y 1-based):
      1, 2  000001_01_01 key 12 of 10-14 (train): two lesions on one key slice; slice 13 missing
      3     000001_01_01 key 31 of 30-32 (train): a second sub-volume of the same series
      4     000002_01_01 key 6 of 5-7 (val): 384x384 images, NaN slice interval, empty age
      5     000003_02_01 key 21 of 20-22 (test): noisy, slice interval 0, key-slice PNG missing
    """
    root = tmp_path / 'DeepLesion'
    root.mkdir()
    rows = [
        dl_row(key=12, slice_range='10, 14'),
        dl_row(key=12, slice_range='10, 14', box='201.5, 301.25, 231.5, 321.25',
               recist='206.5, 306.25, 226.5, 316.25, 210, 314, 222, 308',
               diameters='22.3607, 13.4164', lesion_type='-1'),
        dl_row(key=31, slice_range='30, 32', spacing='0.8, 0.8, 2.5'),
        dl_row(patient=2, key=6, slice_range='5, 7', size='384, 384', spacing='0.7, 0.7, nan',
               age='', gender='M', split='2', lesion_type='4', box='11, 21, 31, 51',
               recist='16, 26, 26, 46, 18, 40, 24, 30', window='-160, 240'),
        dl_row(patient=3, study=2, key=21, slice_range='20, 22', spacing='0.9, 0.9, 0',
               noisy='1', split='3', lesion_type='5', window='-1500, 500'),
    ]
    write_dl_info(root / 'DL_info.csv', rows)
    images = root / 'Images_png'
    write_slices(images, '000001_01_01', [10, 11, 12, 14, 30, 31, 32])
    write_slices(images, '000002_01_01', [5, 6, 7], size=(384, 384))
    write_slices(images, '000003_02_01', [20, 22])
    return root


def test_quirky_dataset_numbers(quirky_root, tmp_path, capsys):
    out = tmp_path / 'out'
    summary = convert_deeplesion(str(quirky_root), str(out))
    train, val, test = (_strict_json(out / f'{s}.json') for s in ('train', 'val', 'test'))

    # --- train: one image with two annotations + one image in a second sub-volume
    assert [im['file_name'] for im in train['images']] == ['000001_01_01/012.png',
                                                          '000001_01_01/031.png']
    im = train['images'][0]
    assert im == {
        'id': 1, 'file_name': '000001_01_01/012.png', 'width': 512, 'height': 512,
        'volume_id': '000001_01_01_010-014', 'series': '000001_01_01', 'slice_index': 12,
        'slice_range': [10, 14], 'spacing': [0.8, 0.8, 2.5], 'slice_interval': 2.5,
        'dicom_window': [-175, 275], 'split': 'train', 'patient_index': 1, 'study_index': 1,
        'series_id': 1, 'gender': 'F', 'age': 71}
    a1, a2, a3 = train['annotations']
    # CSV box 51, 61, 81, 101 (1-based) -> 0-based x1, y1 = 50, 60; w = 30, h = 40.
    assert a1['bbox'] == [50.0, 60.0, 30.0, 40.0] and a1['area'] == 1200.0
    assert a1['recist'] == [55.0, 65.0, 75.0, 95.0, 59.0, 89.0, 71.0, 69.0]
    assert a1['diameters_px'] == [36.0555, 20.0]
    assert (a1['id'], a1['image_id'], a1['csv_row'], a1['category_id'], a1['iscrowd']) == \
        (1, 1, 1, 1, 0)
    assert (a1['source'], a1['noisy'], a1['hard_negative'], a1['lesion_type']) == \
        ('recist', False, False, -1)
    # 201.5, 301.25, 231.5, 321.25 -> [200.5, 300.25, 30, 20], area 600.
    assert a2['bbox'] == [200.5, 300.25, 30.0, 20.0] and a2['area'] == 600.0
    assert a2['recist'] == [205.5, 305.25, 225.5, 315.25, 209.0, 313.0, 221.0, 307.0]
    assert (a2['image_id'], a2['csv_row']) == (1, 2)
    assert (a3['image_id'], a3['csv_row']) == (2, 3)
    assert train['volumes'] == [
        {'id': '000001_01_01_010-014', 'series': '000001_01_01', 'slice_range': [10, 14],
         'spacing': [0.8, 0.8, 2.5], 'split': 'train', 'complete': False, 'missing_slices': [13]},
        {'id': '000001_01_01_030-032', 'series': '000001_01_01', 'slice_range': [30, 32],
         'spacing': [0.8, 0.8, 2.5], 'split': 'train', 'complete': False, 'missing_slices': []}]
    assert train['categories'] == [{'id': 1, 'name': 'lesion'}]
    assert train['info']['source'] == 'DL_info.csv'

    # --- val: 384x384, NaN interval -> null, empty age -> null
    (vim, ) = val['images']
    assert (vim['width'], vim['height']) == (384, 384)
    assert vim['spacing'] == [0.7, 0.7, None] and vim['slice_interval'] is None
    assert vim['age'] is None and vim['gender'] == 'M' and vim['dicom_window'] == [-160, 240]
    (vann, ) = val['annotations']
    assert vann['bbox'] == [10.0, 20.0, 20.0, 30.0] and vann['area'] == 600.0
    assert vann['lesion_type'] == 4 and vann['csv_row'] == 4
    assert val['volumes'][0]['spacing'] == [0.7, 0.7, None]

    # --- test: noisy row kept with the flag, zero interval kept as 0, key PNG missing
    (tim, ) = test['images']
    assert tim['slice_interval'] == 0.0 and tim['spacing'] == [0.9, 0.9, 0.0]
    assert test['annotations'][0]['noisy'] is True
    assert test['volumes'][0]['missing_slices'] == [21]

    s = summary
    assert s == _strict_json(out / 'summary.json')
    assert s['rows_read'] == 5 and s['rows_used'] == 5 and s['rows_skipped'] == 0
    assert s['rows_per_split'] == {'train': 3, 'val': 1, 'test': 1}
    assert s['key_slices'] == 4 and s['key_slices_per_split'] == {'train': 2, 'val': 1, 'test': 1}
    assert s['key_slices_with_several_lesions'] == 1
    assert s['lesions'] == 5 and s['volumes'] == 4 and s['series'] == 3
    assert s['noisy_rows'] == 1 and s['noisy_rows_kept'] == 1
    assert s['rows_empty_age'] == 1 and s['rows_empty_gender'] == 0
    assert s['key_slices_not_512'] == 1 and s['key_slice_sizes'] == {'384x384': 1, '512x512': 3}
    assert s['volumes_with_missing_slices'] == 2 and s['missing_slices'] == 2
    assert s['key_slices_missing_png'] == 1
    assert s['key_slice_pngs_missing'] == ['000003_02_01/021.png']
    assert s['series_folders_missing'] == 0
    assert (s['slice_interval_nan_rows'], s['slice_interval_zero_rows']) == (1, 1)
    assert (s['slice_interval_nan_volumes'], s['slice_interval_zero_volumes']) == (1, 1)
    printed = capsys.readouterr().out
    assert 'rows read: 5, used: 5 (3 train / 1 val / 1 test)' in printed
    assert 'key slices whose PNG is missing: 1 e.g. 000003_02_01/021.png' in printed


def test_pycocotools_reads_output(quirky_root, tmp_path):
    coco_mod = pytest.importorskip('pycocotools.coco')
    convert_deeplesion(str(quirky_root), str(tmp_path / 'out'), log=None)
    coco = coco_mod.COCO(str(tmp_path / 'out' / 'train.json'))
    assert coco.getAnnIds(imgIds=[1]) == [1, 2]
    assert coco.loadCats([1])[0]['name'] == 'lesion'


def test_output_is_byte_identical(quirky_root, tmp_path):
    for name in ('a', 'b'):
        convert_deeplesion(str(quirky_root), str(tmp_path / name), log=None)
    for f in ('train.json', 'val.json', 'test.json', 'summary.json'):
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()


def test_drop_noisy_and_no_image_check(quirky_root, tmp_path):
    assert main(['--data-root', str(quirky_root), '--out-dir', str(tmp_path / 'o'),
                 '--drop-noisy', '--no-image-check']) == 0
    test = _strict_json(tmp_path / 'o' / 'test.json')
    assert test['annotations'] == [] and test['images'] == [] and test['volumes'] == []
    train = _strict_json(tmp_path / 'o' / 'train.json')
    assert all('missing_slices' not in v for v in train['volumes'])
    s = _strict_json(tmp_path / 'o' / 'summary.json')
    assert s['noisy_rows_dropped'] == 1 and s['rows_skipped'] == 1 and s['images_checked'] is False
    assert s['skipped'][0]['csv_row'] == 5 and 'Possibly_noisy' in s['skipped'][0]['reason']


def test_missing_image_folder_is_loud_not_fatal(quirky_root, tmp_path, capsys):
    import shutil
    shutil.rmtree(quirky_root / 'Images_png')
    s = convert_deeplesion(str(quirky_root), str(tmp_path / 'o'))
    assert s['image_dir_missing'] is True and s['images_checked'] is False
    assert s['lesions'] == 5
    assert 'IMAGES ARE MISSING' in capsys.readouterr().out
    assert len(_strict_json(tmp_path / 'o' / 'train.json')['annotations']) == 3


def test_missing_series_folder(quirky_root, tmp_path):
    import shutil
    shutil.rmtree(quirky_root / 'Images_png' / '000002_01_01')
    s = convert_deeplesion(str(quirky_root), str(tmp_path / 'o'), log=None)
    assert s['series_folders_missing'] == 1 and s['missing_slices'] == 2 + 3
    assert _strict_json(tmp_path / 'o' / 'val.json')['volumes'][0]['missing_slices'] == [5, 6, 7]


def test_malformed_row_error_and_skip(quirky_root, tmp_path, dl_row, write_dl_info, capsys):
    csv_path = quirky_root / 'DL_info.csv'
    lines = csv_path.read_text().splitlines(keepends=True)
    import csv
    import io
    buf = io.StringIO()
    csv.writer(buf).writerow(dl_row(patient=4, key=8, lesion_type='12'))
    csv_path.write_text(''.join(lines[:3]) + buf.getvalue() + ''.join(lines[3:]))

    with pytest.raises(DLInfoError, match=r"DL_info.csv row 3 \(line 4\), field "
                       r"Coarse_lesion_type: expected -1 or 1..8, got '12'"):
        convert_deeplesion(str(quirky_root), str(tmp_path / 'o'), log=None)
    assert not (tmp_path / 'o' / 'train.json').exists()

    assert main(['--data-root', str(quirky_root), '--out-dir', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert 'row 3 (line 4), field Coarse_lesion_type' in err and '--skip-invalid' in err

    assert main(['--data-root', str(quirky_root), '--out-dir', str(tmp_path / 'o'),
                 '--skip-invalid']) == 0
    s = _strict_json(tmp_path / 'o' / 'summary.json')
    assert s['rows_read'] == 6 and s['rows_used'] == 5 and s['rows_skipped'] == 1
    assert s['skipped'][0]['csv_row'] == 3 and s['skipped'][0]['line'] == 4
    assert 'Coarse_lesion_type' in s['skipped'][0]['reason']
    train = _strict_json(tmp_path / 'o' / 'train.json')
    # csv_row keeps the file's numbering although an earlier row was skipped.
    assert [a['csv_row'] for a in train['annotations']] == [1, 2, 4]


def test_inconsistent_subvolume_rows(tmp_path, dl_row, write_dl_info):
    root = tmp_path / 'r'
    root.mkdir()
    write_dl_info(root / 'DL_info.csv', [dl_row(key=12), dl_row(key=13, slice_range='10, 14',
                                                                spacing='0.7, 0.7, 2.5')])
    with pytest.raises(DLInfoError, match=r'row 2 \(line 3\), field Spacing_mm_px_: expected the '
                       'spacing of sub-volume 000001_01_01_010-014 given in row 1'):
        convert_deeplesion(str(root), str(tmp_path / 'o'), check_images=False, log=None)
    s = convert_deeplesion(str(root), str(tmp_path / 'o'), check_images=False, skip_invalid=True,
                           log=None)
    assert s['rows_skipped'] == 1 and s['lesions'] == 1


def test_missing_csv_is_clear(tmp_path, capsys):
    assert main(['--data-root', str(tmp_path), '--out-dir', str(tmp_path / 'o')]) == 1
    assert 'DL_info.csv not found' in capsys.readouterr().err


def test_real_sample_converts(shared_data_dir, tmp_path, capsys):
    root = shared_data_dir / 'deeplesion_dl_info_sample'
    s = convert_deeplesion(str(root), str(tmp_path / 'o'))
    assert s['rows_read'] == 158 and s['rows_skipped'] == 0
    assert s['key_slices'] == 152 and s['lesions'] == 158
    assert s['rows_per_split'] == {'train': 105, 'val': 18, 'test': 35}
    assert s['noisy_rows'] == 0 and s['rows_empty_age'] == 0 and s['key_slices_not_512'] == 0
    assert s['image_dir_missing'] is True
    assert 'IMAGES ARE MISSING' in capsys.readouterr().out
    train = _strict_json(tmp_path / 'o' / 'train.json')
    im = next(i for i in train['images'] if i['file_name'] == '000089_01_01/037.png')
    assert im['slice_range'] == [31, 43] and im['spacing'] == [0.859375, 0.859375, 5.0]
    (ann, ) = [a for a in train['annotations'] if a['image_id'] == im['id']]
    # CSV: "132.977, 171.808, 165.939, 214.029" (1-based).
    assert ann['bbox'] == [131.977, 170.808, 32.962, 42.221]
    assert math.isclose(ann['area'], 32.962 * 42.221, rel_tol=1e-12)
    assert ann['recist'][:2] == [153.273, 175.808] and ann['csv_row'] == 1


def test_real_sample_matches_recist_box_release(shared_data_dir, tmp_path):
    """The converter's 0-based CSV boxes equal the RECIST-Box releases imported to 0-based."""
    from mmlesion.datasets.converters.annotation_release import load_lh_2d
    convert_deeplesion(str(shared_data_dir / 'deeplesion_dl_info_sample'), str(tmp_path / 'o'),
                       check_images=False, log=None)
    csv_boxes = {}
    for split in ('train', 'val', 'test'):
        data = _strict_json(tmp_path / 'o' / f'{split}.json')
        images = {im['id']: im for im in data['images']}
        for a in data['annotations']:
            im = images[a['image_id']]
            x, y, w, h = a['bbox']
            csv_boxes.setdefault((im['volume_id'], im['slice_index']), []).append(
                (x, y, x + w, y + h))
    matched = 0
    for name in ('RECIST-Box-Valid.pkl', 'RECIST-Box-Test.pkl'):
        for key, entries in load_lh_2d(shared_data_dir / 'lesion_harvester' / name).items():
            for z, box in entries:
                if (key, z) in csv_boxes:
                    # The pickles round some CSV values to 3 decimals (96.8483 -> 96.848).
                    assert any(max(abs(b - c) for b, c in zip(box, cand)) < 1e-3
                               for cand in csv_boxes[(key, z)]), (key, z, box)
                    matched += 1
    assert matched == 53


def test_synthetic_generator_output(tmp_path):
    """Convert the synthetic generator's DL_info.csv and compare with its 0-based truth.json."""
    synthetic = pytest.importorskip('mmlesion.synthetic')
    root = tmp_path / 'syn'
    synthetic.generate_dataset(str(root), 10, seed=1, image_size=128, noisy_fraction=0.3,
                               small_image_fraction=0.3)
    s = convert_deeplesion(str(root), str(tmp_path / 'o'), log=None)
    truth = _strict_json(root / 'ground_truth' / 'truth.json')['volumes']
    marked = [(vol, les) for vol in truth for les in vol['lesions'] if les['marked']]
    assert marked and any(les['noisy'] for _, les in marked)

    images, anns, vols = {}, {}, {}
    for split in ('train', 'val', 'test'):
        data = _strict_json(tmp_path / 'o' / f'{split}.json')
        for im in data['images']:
            images[(im['volume_id'], im['slice_index'])] = im
        by_id = {im['id']: im for im in data['images']}
        for a in data['annotations']:
            anns[a['csv_row']] = (a, by_id[a['image_id']])
        vols.update({v['id']: v for v in data['volumes']})

    assert s['rows_skipped'] == 0 and s['missing_slices'] == 0
    assert s['lesions'] == len(anns) == len(marked)
    assert s['key_slices'] == len(images) == len({(v['key'], les['key_slice'])
                                                    for v, les in marked})
    assert set(vols) == {v['key'] for v, _ in marked}
    assert s['noisy_rows'] == sum(les['noisy'] for _, les in marked)
    for vol, les in marked:
        ann, im = anns[les['csv_row']]
        assert (im['volume_id'], im['slice_index']) == (vol['key'], les['key_slice'])
        assert [im['width'], im['height']] == vol['image_size']
        assert im['spacing'] == vol['spacing'] and im['split'] == vol['split']
        # Both 0-based: the CSV's 1-based values minus 1 give back the truth exactly.
        box = les['csv_box'] if les['noisy'] else les['box2d']
        recist = les['csv_recist'] if les['noisy'] else les['recist']
        x, y, w, h = ann['bbox']
        assert max(abs(a - b) for a, b in zip([x, y, x + w, y + h], box)) < 1e-9
        assert ann['recist'] == recist
        assert ann['noisy'] is les['noisy']
        assert ann['lesion_type'] == (-1 if vol['split'] == 'train' else les['lesion_type'])
    for vol in truth:
        if vol['key'] in vols:
            v = vols[vol['key']]
            assert v['slice_range'] == vol['slice_range'] and v['missing_slices'] == []
            assert v['spacing'] == vol['spacing']
