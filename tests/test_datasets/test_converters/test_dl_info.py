import math

import pytest

from mmlesion.datasets.converters.dl_info import (
    DL_INFO_HEADER,
    DLInfoError,
    parse_row,
    read_dl_info,
)


def test_parse_row_values_and_frames(dl_row):
    row = parse_row(dl_row(), csv_row=3, line=4)
    assert row.series == '000001_01_01'
    assert row.volume_id == '000001_01_01_010-014'
    assert row.key_slice_index == 12 and row.slice_range == (10, 14)
    # CSV values are kept 1-based; the properties move them to 0-based.
    assert row.bounding_box == (51.0, 61.0, 81.0, 101.0)
    assert row.bbox_xyxy_0based == (50.0, 60.0, 80.0, 100.0)
    assert row.recist_0based == (55.0, 65.0, 75.0, 95.0, 59.0, 89.0, 71.0, 69.0)
    assert row.lesion_diameters_px == (36.0555, 20.0)
    assert row.spacing_mm == (0.8, 0.8, 2.5) and row.slice_interval_mm == 2.5
    assert row.image_size == (512, 512) and row.dicom_window == (-175.0, 275.0)
    assert (row.gender, row.age, row.split, row.noisy, row.lesion_type) == ('F', 71, 'train', False,
                                                                           -1)
    assert row.warnings == ()


def test_parse_row_float_noise_removed(dl_row):
    row = parse_row(dl_row(box='154.273, 176.808, 165.939, 214.029'), 1, 2)
    # 154.273 - 1 in binary floating point is 153.27300000000002; the converter rounds it away.
    assert row.bbox_xyxy_0based == (153.273, 175.808, 164.939, 213.029)


def test_quirks_are_accepted(dl_row):
    nan_z = parse_row(dl_row(spacing='0.7, 0.7, nan'), 1, 2)
    assert math.isnan(nan_z.spacing_mm[2]) and nan_z.slice_interval_mm is None
    empty_z = parse_row(dl_row(spacing='0.7, 0.7, '), 1, 2)
    assert empty_z.slice_interval_mm is None
    zero_z = parse_row(dl_row(spacing='0.7, 0.7, 0'), 1, 2)
    assert zero_z.slice_interval_mm == 0.0
    assert parse_row(dl_row(age=''), 1, 2).age is None
    assert parse_row(dl_row(age='NaN'), 1, 2).age is None
    assert parse_row(dl_row(gender=''), 1, 2).gender is None
    assert parse_row(dl_row(noisy='1'), 1, 2).noisy is True
    small = parse_row(dl_row(size='384, 384', box='300, 300, 380, 380',
                             recist='305, 305, 375, 375, 310, 370, 370, 310'), 1, 2)
    assert small.image_size == (384, 384)
    # RECIST padding pushes a border lesion's box past the image (real RECIST-Box: x2 = 516.3).
    border = parse_row(dl_row(box='480, 61, 516.347, 101',
                              recist='485, 66, 511.347, 96, 490, 90, 500, 70'), 1, 2)
    assert border.warnings == ('box_crosses_border', )


@pytest.mark.parametrize('field,value,expected', [
    ('box', '1, 2, 3', "Bounding_boxes: expected 4 numbers, got 3: '1, 2, 3'"),
    ('box', '51, 61, 8x1, 101', "Bounding_boxes: expected 4 numbers, '8x1' is not a number"),
    ('box', '81, 61, 51, 101', 'Bounding_boxes: expected x1 < x2 and y1 < y2'),
    ('box', '51, 61, 600, 101', 'Bounding_boxes: expected coordinates inside the 512x512 image'),
    ('recist', '56, 66, 76, 96, 60, 90, 72', 'Measurement_coordinates: expected 8 numbers, got 7'),
    ('recist', '56, 66, 76, 96, 60, 90, 72, 700',
     'Measurement_coordinates: expected coordinates inside the 512x512 image'),
    ('diameters', '36', 'Lesion_diameters_Pixel_: expected 2 numbers, got 1'),
    ('location', '0.2, 0.3', 'Normalized_lesion_location: expected 3 numbers, got 2'),
    ('lesion_type', '9', "Coarse_lesion_type: expected -1 or 1..8, got '9'"),
    ('lesion_type', '0', "Coarse_lesion_type: expected -1 or 1..8, got '0'"),
    ('noisy', '2', "Possibly_noisy: expected 0 or 1, got '2'"),
    ('split', '4', "Train_Val_Test: expected 1 (train), 2 (val) or 3 (test), got '4'"),
    ('split', 'train', "Train_Val_Test: expected an integer, got 'train'"),
    ('slice_range', '13, 20', 'Slice_range: expected first <= Key_slice_index (12) <= last'),
    ('slice_range', '10', 'Slice_range: expected 2 numbers, got 1'),
    ('spacing', '0.8, 0.8', 'Spacing_mm_px_: expected 3 numbers (x, y, z mm), got 2'),
    ('spacing', '0, 0.8, 1', 'Spacing_mm_px_: expected positive finite x, y spacing'),
    ('spacing', '0.8, 0.8, -1', 'Spacing_mm_px_: expected a slice interval >= 0 mm'),
    ('size', '512', 'Image_size: expected 2 numbers, got 1'),
    ('size', '512.5, 512', 'Image_size: expected 2 integers'),
    ('window', '275, -175', 'DICOM_windows: expected low < high (HU)'),
    ('gender', 'X', "Patient_gender: expected F, M or empty, got 'X'"),
    ('age', 'old', "Patient_age: expected an integer, got 'old'"),
    ('age', '200', "Patient_age: expected an age in years 0..130, got '200'"),
    ('file_name', '000001_01_01_013.png',
     "File_name: expected 000001_01_01_012.png (Patient_index, Study_index, Series_ID, "
     "Key_slice_index), got '000001_01_01_013.png'"),
    ('file_name', 'slice12.png', 'File_name: not a DeepLesion File_name'),
])
def test_each_field_is_validated(dl_row, field, value, expected):
    with pytest.raises(DLInfoError) as err:
        parse_row(dl_row(**{field: value}), csv_row=5, line=6, path='/data/DL_info.csv')
    msg = str(err.value)
    assert msg.startswith('DL_info.csv row 5 (line 6), field '), msg
    assert expected in msg, msg
    assert err.value.row == 5 and err.value.line == 6 and err.value.path == '/data/DL_info.csv'


def test_wrong_field_count(dl_row):
    with pytest.raises(DLInfoError, match=r'row 2 \(line 3\): expected 18 comma-separated fields, '
                       r'got 17'):
        parse_row(dl_row()[:-1], csv_row=2, line=3)


def test_read_names_row_and_line_of_malformed_row(tmp_path, dl_row, write_dl_info):
    rows = [dl_row(key=10 + i) for i in range(16)] + [dl_row(key=40, box='1, 2, 3')]
    path = write_dl_info(tmp_path / 'DL_info.csv', rows)
    with pytest.raises(DLInfoError) as err:
        read_dl_info(path)
    assert str(err.value) == ("DL_info.csv row 17 (line 18), field Bounding_boxes: expected 4 "
                              "numbers, got 3: '1, 2, 3'")
    assert err.value.field == 'Bounding_boxes'

    table = read_dl_info(path, skip_invalid=True)
    assert table.num_rows_read == 17 and len(table.rows) == 16
    assert [r.csv_row for r in table.rows] == list(range(1, 17))
    assert [r.line for r in table.rows][:2] == [2, 3]
    assert len(table.skipped) == 1 and table.skipped[0][:2] == (17, 18)
    assert 'field Bounding_boxes' in table.skipped[0][2]


def test_header_must_match_exactly(tmp_path, dl_row, write_dl_info):
    header = list(DL_INFO_HEADER)
    header[6] = 'Bounding_box'
    path = write_dl_info(tmp_path / 'DL_info.csv', [dl_row()], header=header)
    with pytest.raises(DLInfoError, match="line 1: not a DeepLesion DL_info.csv header "
                       r"\(column 7: expected 'Bounding_boxes', got 'Bounding_box'\)"):
        read_dl_info(path, skip_invalid=True)
    empty = tmp_path / 'empty.csv'
    empty.write_text('')
    with pytest.raises(DLInfoError, match='the file is empty'):
        read_dl_info(empty)


def test_bom_and_blank_lines(tmp_path, dl_row, write_dl_info):
    path = write_dl_info(tmp_path / 'DL_info.csv', [dl_row(key=12), dl_row(key=20)])
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    path.write_text('\ufeff' + lines[0] + lines[1] + '\n' + lines[2] + '\n')
    table = read_dl_info(path)
    assert [(r.csv_row, r.line) for r in table.rows] == [(1, 2), (2, 4)]


def test_real_sample_parses(shared_data_dir):
    table = read_dl_info(shared_data_dir / 'deeplesion_dl_info_sample' / 'DL_info.csv')
    assert table.num_rows_read == 158 and len(table.rows) == 158 and not table.skipped
    first = table.rows[0]
    assert first.file_name == '000089_01_01_037.png'
    assert first.volume_id == '000089_01_01_031-043'
    assert first.spacing_mm == (0.859375, 0.859375, 5.0)
    assert first.bbox_xyxy_0based == (131.977, 170.808, 164.939, 213.029)
    splits = [r.split for r in table.rows]
    assert (splits.count('train'), splits.count('val'), splits.count('test')) == (105, 18, 35)
