import pytest

from mmlesion.structures.volume_key import (
    VolumeKey,
    parse_dl_file_name,
    parse_volume_key,
    series_name,
    slice_file_name,
    volume_key,
)


def test_volume_key_round_trip():
    key = volume_key(1344, 1, 1, 12, 24)
    assert key == '001344_01_01_012-024'
    parsed = parse_volume_key(key)
    assert parsed == VolumeKey(1344, 1, 1, 12, 24)
    assert str(parsed) == key
    assert parsed.series_name == '001344_01_01'
    assert parse_volume_key('002982_04_02_200-260.annot').end == 260


def test_four_digit_slice_indices():
    assert volume_key(1, 1, 1, 998, 1002) == '000001_01_01_998-1002'
    assert parse_volume_key('000001_01_01_998-1002').end == 1002


@pytest.mark.parametrize('bad', ['001344_01_01_012', '1344_01_01_012-024', '001344_01_01_024-012'])
def test_bad_volume_keys(bad):
    with pytest.raises(ValueError, match='sub-volume key'):
        parse_volume_key(bad)


def test_file_names():
    assert series_name(89, 1, 1) == '000089_01_01'
    assert slice_file_name('000089_01_01', 37) == '000089_01_01/037.png'
    assert parse_dl_file_name('000089_01_01_037.png') == ('000089_01_01', 37)
    with pytest.raises(ValueError, match='File_name'):
        parse_dl_file_name('000089_01_01_037.jpg')
