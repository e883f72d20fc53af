import os

import cv2
import numpy as np
import pytest

from mmdet.registry import TRANSFORMS
from mmdet.utils import register_all_modules
from mmlesion.datasets.transforms import LoadLesionAnnotations, LoadMultiSliceFromFile

register_all_modules(init_default_scope=True)


def _write_series(folder, indices, shape=(6, 5)):
    os.makedirs(folder, exist_ok=True)
    for i in indices:
        raw = np.full(shape, 32768 + 10 * i, dtype=np.uint16)
        assert cv2.imwrite(os.path.join(folder, f'{i:03d}.png'), raw)


def _windowed(hu):
    return (np.clip(np.asarray(hu, dtype=np.float64), -1024, 3071) + 1024) / 4095 * 255


def _results(folder, key, slice_range, interval, **extra):
    return dict(img_path=os.path.join(folder, f'{key:03d}.png'), slice_index=key,
                slice_range=list(slice_range), slice_interval=interval, **extra)


def test_build_from_config_and_9_slices_2p5mm(tmp_path):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 10))
    loader = TRANSFORMS.build(dict(type='LoadMultiSliceFromFile', num_slices=9))
    assert isinstance(loader, LoadMultiSliceFromFile)
    out = loader(_results(folder, 5, (1, 9), 2.5))
    img = out['img']
    assert img.shape == (6, 5, 9) and img.dtype == np.float32
    assert out['img_shape'] == (6, 5) and out['ori_shape'] == (6, 5) and out['num_slices'] == 9
    # offsets k * 0.8, k = -4..4; HU of slice i is 10 i.
    # -3.2: 0.8 * slice 2 + 0.2 * slice 1 = 18 HU ; -0.8: 0.2 * 50 + 0.8 * 40 = 42 HU
    expected_hu = [18, 26, 34, 42, 50, 58, 66, 74, 82]
    np.testing.assert_allclose(img[3, 2], _windowed(expected_hu), rtol=1e-5)
    assert img[3, 2, 4] == pytest.approx((50 + 1024) / 4095 * 255, rel=1e-6)


def test_3_slices_5mm_and_missing_slices_from_info(tmp_path):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, [1, 2, 4, 5])
    loader = LoadMultiSliceFromFile(num_slices=3, window_hu=None)
    # 5 mm: [0.6 key + 0.4 prev, key, 0.6 key + 0.4 next]
    out = loader(_results(folder, 2, (1, 5), 5.0))
    # slice 3 is absent on disk: the + neighbour steps back to the key
    np.testing.assert_allclose(out['img'][0, 0], [16, 20, 20], rtol=1e-6)
    # the dataset's missing_slices is honoured without checking files
    out = loader(_results(folder, 4, (1, 5), 2.0, missing_slices=[3]))
    np.testing.assert_allclose(out['img'][0, 0], [40, 40, 50])


@pytest.mark.parametrize('interval', [0, None, float('nan')])
def test_unusable_interval_repeats_key(tmp_path, interval):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 4))
    loader = LoadMultiSliceFromFile(num_slices=9, window_hu=None)
    out = loader(_results(folder, 2, (1, 3), interval))
    np.testing.assert_array_equal(out['img'][1, 1], [20.0] * 9)


def test_uint8_output_and_cached_reader(tmp_path):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 6))
    loader = LoadMultiSliceFromFile(num_slices=3, to_float32=False, cache_volumes=1)
    out = loader(_results(folder, 3, (1, 5), 2.0))
    assert out['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['img'][0, 0], np.round(_windowed([20, 30, 40])))
    loader(_results(folder, 4, (1, 5), 2.0))
    assert loader.reader.num_decoded == 5  # whole sub-volume once, then from the cache
    with pytest.raises(ValueError, match='uint8'):
        LoadMultiSliceFromFile(to_float32=False, out_range=(0, 1000))


def test_sample_cache_decodes_each_key_slice_once(tmp_path):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 8))
    loader = LoadMultiSliceFromFile(num_slices=3, cache_samples=2)
    first = loader(_results(folder, 3, (1, 7), 2.0))['img']
    assert loader.reader.num_decoded == 3  # slices 2, 3, 4
    first[...] = -1.0  # a later transform writing into its input must not reach the cache
    again = loader(_results(folder, 3, (1, 7), 2.0))['img']
    assert loader.reader.num_decoded == 3
    np.testing.assert_allclose(again[0, 0], _windowed([20, 30, 40]), rtol=1e-6)
    loader(_results(folder, 5, (1, 7), 2.0))  # 4, 5, 6: 3 more decodes
    loader(_results(folder, 3, (1, 7), 2.0))  # cached; now the most recently used
    loader(_results(folder, 6, (1, 7), 2.0))  # evicts key 5, the least recently used
    assert loader.reader.num_decoded == 9
    loader(_results(folder, 3, (1, 7), 2.0))
    assert loader.reader.num_decoded == 9
    loader(_results(folder, 5, (1, 7), 2.0))
    assert loader.reader.num_decoded == 12
    # the key includes what shapes the window: another slice interval is another sample
    out = loader(_results(folder, 3, (1, 7), 5.0))['img']
    np.testing.assert_allclose(out[0, 0], _windowed([26, 30, 34]), rtol=1e-5)
    assert loader.reader.num_decoded == 15
    assert 'cache_samples=2' in repr(loader)
    with pytest.raises(ValueError, match='cache_samples'):
        LoadMultiSliceFromFile(cache_samples=-1)


def test_loader_errors(tmp_path):
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 4))
    loader = LoadMultiSliceFromFile(num_slices=3)
    with pytest.raises(KeyError, match='slice_range'):
        loader(dict(img_path=os.path.join(folder, '002.png'), slice_index=2))
    with pytest.raises(ValueError, match='does not match slice_index 3'):
        loader(_results(folder, 2, (1, 3), 2.0) | dict(slice_index=3))
    with pytest.raises(FileNotFoundError, match='009.png'):
        loader(_results(folder, 9, (1, 9), 2.0))
    with pytest.raises(ValueError, match='odd'):
        LoadMultiSliceFromFile(num_slices=4)


def test_load_lesion_annotations_hard_negative_flags():
    loader = TRANSFORMS.build(dict(type='LoadLesionAnnotations', with_bbox=True))
    assert isinstance(loader, LoadLesionAnnotations)
    results = dict(instances=[
        dict(bbox=[1, 2, 11, 12], bbox_label=0, ignore_flag=0, hard_negative=False),
        dict(bbox=[3, 4, 13, 14], bbox_label=0, ignore_flag=0, hard_negative=True),
        dict(bbox=[5, 6, 15, 16], bbox_label=0, ignore_flag=1),
    ])
    out = loader(results)
    assert out['gt_hard_negative_flags'].tolist() == [False, True, False]
    assert out['gt_hard_negative_flags'].dtype == bool
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(),
                                  [[1, 2, 11, 12], [3, 4, 13, 14], [5, 6, 15, 16]])
    assert out['gt_bboxes_labels'].tolist() == [0, 0, 0]
    assert out['gt_ignore_flags'].tolist() == [False, False, True]
    empty = loader(dict(instances=[]))
    assert empty['gt_hard_negative_flags'].shape == (0,)
    assert len(empty['gt_bboxes']) == 0


def test_composite_window_from_config_and_in_the_volume_scan(tmp_path):
    from mmlesion.datasets.volume_reader import VolumeReader
    folder = str(tmp_path / '000001_01_01')
    _write_series(folder, range(1, 6))
    wins = [[-1024, 3071], [-160, 240]]
    loader = TRANSFORMS.build(dict(type='LoadMultiSliceFromFile', num_slices=3, window_hu=wins))
    assert loader.window_hu == ((-1024.0, 3071.0), (-160.0, 240.0))
    img = loader(_results(folder, 3, (1, 5), 2.0))['img']
    hu = np.array([20.0, 30.0, 40.0])
    np.testing.assert_allclose(img[0, 0], (_windowed(hu) + (hu + 160) / 400 * 255) / 2,
                               rtol=1e-5)
    # the volume scan windows the same way
    reader = VolumeReader(None, max_volumes=1)
    scanned = dict(reader.iter_windows(folder, (1, 5), 2.0, num_slices=3,
                                       window_hu=loader.window_hu))
    np.testing.assert_array_equal(scanned[3], img)
    with pytest.raises(ValueError, match='window_hu'):
        LoadMultiSliceFromFile(window_hu=[(-160, 240), (300, 200)])
