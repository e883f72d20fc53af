import os

import cv2
import numpy as np
import pytest

from mmlesion.datasets.volume_reader import VolumeReader

SERIES = '000001_01_01'


def _write_series(root, series=SERIES, indices=range(1, 11), shape=(8, 6), hu_of=lambda i: 10 * i):
    folder = os.path.join(root, series)
    os.makedirs(folder, exist_ok=True)
    for i in indices:
        raw = np.full(shape, 32768 + hu_of(i), dtype=np.uint16)
        raw[0, 0] = 32768 - 1024  # a -1024 HU pixel, like air
        assert cv2.imwrite(os.path.join(folder, f'{i:03d}.png'), raw)
    return folder


def _windowed(hu):
    return (np.clip(hu, -1024, 3071) + 1024) / 4095 * 255


def test_read_slice_gives_hu(tmp_path):
    _write_series(str(tmp_path))
    reader = VolumeReader(str(tmp_path))
    hu = reader.read_slice(SERIES, 4)
    assert hu.dtype == np.float32
    assert hu[1, 1] == 40.0 and hu[0, 0] == -1024.0
    assert reader.num_decoded == 1


def test_each_png_decoded_once_per_subvolume(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 11))
    reader = VolumeReader(str(tmp_path), max_volumes=2)
    windows = [reader.window(SERIES, (1, 10), k, 5.0, num_slices=9) for k in range(1, 11)]
    assert reader.num_decoded == 10
    windows += [reader.window(SERIES, (1, 10), k, 1.0, num_slices=3) for k in range(1, 11)]
    assert reader.num_decoded == 10
    # iter_windows reuses the cache too
    scanned = list(reader.iter_windows(SERIES, (1, 10), 5.0, num_slices=9))
    assert [k for k, _ in scanned] == list(range(1, 11))
    assert reader.num_decoded == 10
    np.testing.assert_array_equal(scanned[3][1], windows[3])
    volume = reader.get_volume(SERIES, (1, 10))
    assert sorted(volume) == list(range(1, 11))
    assert not volume[1].flags.writeable


def test_iter_windows_without_cache_still_decodes_once(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 11))
    reader = VolumeReader(str(tmp_path), max_volumes=0)
    assert len(list(reader.iter_windows(SERIES, (1, 10), 0.625, num_slices=9))) == 10
    assert reader.num_decoded == 10
    assert reader.cached_volumes == []


def test_lru_eviction(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 7))
    reader = VolumeReader(str(tmp_path), max_volumes=1)
    reader.get_volume(SERIES, (1, 3))
    reader.get_volume(SERIES, (1, 3))
    assert reader.num_decoded == 3
    reader.get_volume(SERIES, (4, 6))
    assert reader.num_decoded == 6
    assert reader.cached_volumes == [(os.path.join(str(tmp_path), SERIES), 4, 6)]
    reader.get_volume(SERIES, (1, 3))  # evicted: decoded again
    assert reader.num_decoded == 9


def test_window_values_5mm(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 11))
    reader = VolumeReader(str(tmp_path))
    win = reader.window(SERIES, (1, 10), 5, 5.0, num_slices=3)
    assert win.shape == (8, 6, 3) and win.dtype == np.float32
    # HU: 0.6 * 50 + 0.4 * 40 = 46 ; 50 ; 0.6 * 50 + 0.4 * 60 = 54
    np.testing.assert_allclose(win[2, 2], _windowed(np.array([46.0, 50.0, 54.0])), rtol=1e-5)
    np.testing.assert_allclose(win[0, 0], [0, 0, 0], atol=1e-4)
    hu = reader.window(SERIES, (1, 10), 5, 5.0, num_slices=3, window_hu=None)
    np.testing.assert_allclose(hu[2, 2], [46.0, 50.0, 54.0], rtol=1e-5)


def test_uncached_window_reads_only_needed_slices(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 11))
    reader = VolumeReader(str(tmp_path), max_volumes=0)
    hu = reader.window(SERIES, (1, 10), 5, 5.0, num_slices=3, window_hu=None)
    assert reader.num_decoded == 3  # slices 4, 5, 6
    np.testing.assert_allclose(hu[2, 2], [46.0, 50.0, 54.0], rtol=1e-5)
    cached = VolumeReader(str(tmp_path)).window(SERIES, (1, 10), 5, 5.0, num_slices=3)
    np.testing.assert_allclose(reader.window(SERIES, (1, 10), 5, 5.0, num_slices=3), cached)


def test_missing_slice_on_disk_steps_toward_key(tmp_path):
    _write_series(str(tmp_path), indices=[1, 2, 3, 5, 6, 7])  # 4 absent
    for max_volumes in (0, 2):
        reader = VolumeReader(str(tmp_path), max_volumes=max_volumes)
        # 2 mm on 1 mm slices, 5 channels: offsets -4, -2, 0, 2, 4 -> slices 1, 3, 5, 7 and
        # 9 (outside the range: steps back toward the key to 7)
        hu = reader.window(SERIES, (1, 7), 5, 1.0, num_slices=5, window_hu=None)
        np.testing.assert_allclose(hu[2, 2], [10, 30, 50, 70, 70])
        # 2 mm on 2 mm slices: key 5, neighbours 4 (missing -> 5) and 6
        hu = reader.window(SERIES, (1, 7), 5, 2.0, num_slices=3, window_hu=None)
        np.testing.assert_allclose(hu[2, 2], [50, 50, 60])
    # the converter's list of missing slices is used without touching the disk
    reader = VolumeReader(str(tmp_path))
    assert reader.available_slices(SERIES, (1, 7), missing_slices=[4]) == [1, 2, 3, 5, 6, 7]
    assert reader.available_slices(SERIES, (1, 7)) == [1, 2, 3, 5, 6, 7]
    reader.get_volume(SERIES, (1, 7), missing_slices=[4])
    assert reader.num_decoded == 6


def test_zero_interval_repeats_key(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 6))
    reader = VolumeReader(str(tmp_path), max_volumes=0)
    for interval in (0, None, float('nan')):
        hu = reader.window(SERIES, (1, 5), 3, interval, num_slices=9, window_hu=None)
        np.testing.assert_array_equal(hu[2, 2], [30.0] * 9)


def test_errors_name_the_file(tmp_path):
    folder = _write_series(str(tmp_path), indices=[1, 2, 4])
    reader = VolumeReader(str(tmp_path), max_volumes=0)
    with pytest.raises(FileNotFoundError, match='003.png'):
        reader.window(SERIES, (1, 4), 3, 5.0, num_slices=3)
    with pytest.raises(FileNotFoundError, match='003.png'):
        VolumeReader(str(tmp_path)).window(SERIES, (1, 4), 3, 5.0, num_slices=3)
    # a slice listed as present but absent
    with pytest.raises(FileNotFoundError, match='003.png'):
        VolumeReader(str(tmp_path)).get_volume(SERIES, (1, 4), missing_slices=[])
    cv2.imwrite(os.path.join(folder, '003.png'), np.zeros((8, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match='003.png'):
        VolumeReader(str(tmp_path)).get_volume(SERIES, (1, 4))
    cv2.imwrite(os.path.join(folder, '003.png'), np.zeros((5, 6), dtype=np.uint16))
    with pytest.raises(ValueError, match='003.png is 6x5 px'):
        VolumeReader(str(tmp_path)).get_volume(SERIES, (1, 4))
    with pytest.raises(ValueError, match='first <= last'):
        reader.get_volume(SERIES, (4, 1))


def test_series_as_folder_path(tmp_path):
    folder = _write_series(str(tmp_path), indices=range(1, 4))
    reader = VolumeReader(None, max_volumes=0)
    hu = reader.window(folder, (1, 3), 2, 2.0, num_slices=3, window_hu=None)
    np.testing.assert_array_equal(hu[2, 2], [10, 20, 30])


def test_key_outside_range_is_an_error(tmp_path):
    _write_series(str(tmp_path), indices=range(1, 4))
    for max_volumes in (0, 2):
        with pytest.raises(ValueError, match='key slice 5 is outside slice_range 1-3'):
            VolumeReader(str(tmp_path), max_volumes=max_volumes).window(SERIES, (1, 3), 5, 2.0)
