import json
import os

import cv2
import numpy as np
import pytest

import mmlesion.datasets.transforms  # noqa: F401  (registers the pipeline transforms)
from mmdet.registry import DATASETS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.utils import register_all_modules
from mmlesion.datasets.deeplesion import DeepLesionDataset

register_all_modules(init_default_scope=True)

SERIES_A, SERIES_B = '000001_01_01', '000002_01_01'
BLOCK_HU = 1000


def _window(hu):
    return (np.clip(hu, -1024, 3071) + 1024) / 4095 * 255


def _write_png(root, series, index, hu):
    folder = os.path.join(root, 'Images_png', series)
    os.makedirs(folder, exist_ok=True)
    assert cv2.imwrite(os.path.join(folder, f'{index:03d}.png'), (hu + 32768).astype(np.uint16))


def _image(img_id, series, index, slice_range, spacing, interval, size=(40, 32)):
    return dict(id=img_id, file_name=f'{series}/{index:03d}.png', width=size[0], height=size[1],
                volume_id=f'{series}_{slice_range[0]:03d}-{slice_range[1]:03d}', series=series,
                slice_index=index, slice_range=list(slice_range),
                spacing=[spacing, spacing, interval], slice_interval=interval,
                dicom_window=[-175, 275], split='train', patient_index=int(series[:6]),
                study_index=1, series_id=1, gender=None, age=None)


def _ann(ann_id, img_id, bbox, hard_negative=False, noisy=False, source='recist'):
    x, y, w, h = bbox
    return dict(id=ann_id, image_id=img_id, category_id=1, bbox=list(bbox), area=w * h,
                iscrowd=0, recist=[x + 1, y + 1, x + w - 1, y + h - 1, x + 2, y + h - 1,
                                   x + w - 2, y + 1],
                diameters_px=[w, h], lesion_type=-1, noisy=noisy, source=source,
                hard_negative=hard_negative, csv_row=None)


@pytest.fixture(scope='module')
def deeplesion_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('deeplesion'))
    # series A: slices 1..9, 2.5 mm apart, 0.4 mm/px, HU = 10 * index; a 1000 HU block on slice 5
    for i in range(1, 10):
        hu = np.full((32, 40), 10.0 * i)
        if i == 5:
            hu[8:16, 4:12] = BLOCK_HU
        _write_png(root, SERIES_A, i, hu)
    # series B: slices 10..14 with 12 absent, 1 mm apart, 1 mm/px, HU = 10 * index
    for i in (10, 11, 13, 14):
        _write_png(root, SERIES_B, i, np.full((32, 40), 10.0 * i))
    images = [_image(1, SERIES_A, 5, (1, 9), 0.4, 2.5), _image(2, SERIES_B, 14, (10, 14), 1.0, 1.0),
              _image(3, SERIES_A, 3, (1, 9), 0.4, 2.5), _image(4, SERIES_A, 7, (1, 9), 0.4, 2.5)]
    annotations = [
        _ann(1, 1, [4, 8, 8, 8]),
        _ann(2, 1, [20, 2, 10, 6], hard_negative=True, source='mined_3d'),
        _ann(3, 1, [0, 0, 4, 4], noisy=True),
        _ann(4, 2, [10, 10, 12, 12], hard_negative=True, source='mined_3d'),
        _ann(5, 3, [5, 5, 6, 6], noisy=True),
    ]
    volumes = [
        dict(id=f'{SERIES_A}_001-009', series=SERIES_A, slice_range=[1, 9],
             spacing=[0.4, 0.4, 2.5], split='train', complete=False, missing_slices=[]),
        dict(id=f'{SERIES_B}_010-014', series=SERIES_B, slice_range=[10, 14],
             spacing=[1.0, 1.0, 1.0], split='train', complete=True, missing_slices=[12]),
    ]
    content = dict(info=dict(description='test', version='0', source='DL_info.csv',
                             coordinate_frame='0-based pixels; absolute slice indices'),
                   categories=[dict(id=1, name='lesion')], images=images,
                   annotations=annotations, volumes=volumes)
    with open(os.path.join(root, 'train.json'), 'w') as f:
        json.dump(content, f)
    return root


PIPELINE = [
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=(-1024, 3071), out_range=(0, 255)),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
    dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    dict(type='PackLesionInputs'),
]


def _build(root, **kwargs):
    cfg = dict(type='DeepLesionDataset', data_root=root, ann_file='train.json',
               data_prefix=dict(img='Images_png/'), pipeline=PIPELINE,
               filter_cfg=dict(filter_empty_gt=True, min_size=8))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_metainfo_matches_converter_category():
    assert DeepLesionDataset.METAINFO['classes'] == ('lesion',)
    assert DeepLesionDataset.METAINFO['palette'] == [(220, 20, 60)]


def test_data_infos_and_filtering(deeplesion_root):
    dataset = _build(deeplesion_root)
    assert isinstance(dataset, DeepLesionDataset)
    # image 3 only had a noisy box (dropped), image 4 none: filtered; image 2 only has a hard
    # negative and is kept
    assert [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))] == [1, 2]
    info = dataset.get_data_info(0)
    assert info['img_path'] == os.path.join(deeplesion_root, 'Images_png', SERIES_A, '005.png')
    assert info['volume_id'] == '000001_01_01_001-009' and info['series'] == SERIES_A
    assert info['slice_index'] == 5 and info['slice_range'] == [1, 9]
    assert info['spacing'] == [0.4, 0.4, 2.5] and info['slice_interval'] == 2.5
    assert info['missing_slices'] == [] and info['split'] == 'train'
    assert info['complete'] is False
    assert [inst['bbox'] for inst in info['instances']] == [[4, 8, 12, 16], [20, 2, 30, 8]]
    assert [inst['hard_negative'] for inst in info['instances']] == [False, True]
    assert [inst['source'] for inst in info['instances']] == ['recist', 'mined_3d']
    assert info['instances'][0]['recist'] == [5, 9, 11, 15, 6, 15, 10, 9]
    info_b = dataset.get_data_info(1)
    assert info_b['missing_slices'] == [12] and info_b['complete'] is True

    kept_all = _build(deeplesion_root, filter_cfg=None, drop_noisy=False)
    assert len(kept_all) == 4
    assert len(kept_all.get_data_info(0)['instances']) == 3
    no_hn = _build(deeplesion_root, drop_hard_negatives=True)
    assert [no_hn.get_data_info(i)['img_id'] for i in range(len(no_hn))] == [1]
    assert [inst['hard_negative'] for inst in no_hn.get_data_info(0)['instances']] == [False]


def test_full_pipeline_values(deeplesion_root):
    dataset = _build(deeplesion_root)
    packed = dataset[0]
    inputs = packed['inputs'].numpy()
    # 40 x 32 px at 0.4 mm/px -> scale 0.5 -> 20 x 16
    assert inputs.shape == (9, 16, 20)
    # 2.5 mm slices, 9 channels at 2 mm: offsets -3.2 .. 3.2 by 0.8, HU 10 * index
    background_hu = np.array([18, 26, 34, 42, 50, 58, 66, 74, 82], dtype=np.float64)
    np.testing.assert_allclose(inputs[:, 0, 0], _window(background_hu), rtol=1e-5)
    # the block (rows 8..15, cols 4..11 of slice 5) -> rows 4..7, cols 2..5 -> flipped cols 14..17
    # channel 4 is the key slice; channel 3 (-0.8 slices) = 0.2 * key + 0.8 * slice 4
    assert inputs[4, 5, 15] == pytest.approx(_window(BLOCK_HU), rel=1e-5)
    assert inputs[3, 5, 15] == pytest.approx(_window(0.2 * BLOCK_HU + 0.8 * 40), rel=1e-5)
    assert inputs[4, 5, 4] == pytest.approx(_window(50), rel=1e-5)  # unflipped place: background
    # channel groups of 3 (MULAN): the central group 3..5 holds the key at channel 4
    np.testing.assert_allclose(inputs[3:6, 0, 0], _window(background_hu[3:6]), rtol=1e-5)

    sample = packed['data_samples']
    assert isinstance(sample.gt_instances.bboxes, HorizontalBoxes)
    # [4, 8, 12, 16] * 0.5 = [2, 4, 6, 8]; flipped in 20 px: [14, 4, 18, 8]
    np.testing.assert_allclose(sample.gt_instances.bboxes.numpy(), [[14, 4, 18, 8]])
    assert sample.gt_instances.labels.tolist() == [0]
    # [20, 2, 30, 8] * 0.5 = [10, 1, 15, 4]; flipped: [5, 1, 10, 4]
    np.testing.assert_allclose(sample.gt_hard_negatives.bboxes.numpy(), [[5, 1, 10, 4]])
    assert sample.gt_hard_negatives.labels.tolist() == [0]
    meta = sample.metainfo
    assert meta['volume_id'] == '000001_01_01_001-009'
    assert meta['slice_index'] == 5 and meta['slice_range'] == [1, 9]
    assert meta['spacing'] == [0.4, 0.4, 2.5] and meta['slice_interval'] == 2.5
    assert meta['scale_factor'] == (0.5, 0.5)
    assert meta['spacing_mm'] == pytest.approx((0.8, 0.8))
    assert meta['img_shape'] == (16, 20) and meta['ori_shape'] == (32, 40)
    assert meta['img_id'] == 1 and meta['img_path'].endswith('000001_01_01/005.png')
    assert meta['num_slices'] == 9 and meta['flip'] is True


def test_full_pipeline_missing_slice_and_hard_negative_only_image(deeplesion_root):
    packed = _build(deeplesion_root)[1]
    inputs = packed['inputs'].numpy()
    # 40 x 32 px at 1 mm/px -> scale 1.25 -> 50 x 40
    assert inputs.shape == (9, 40, 50)
    # 1 mm slices, key 14 in 10..14, slice 12 missing: offsets -8..8 by 2 ->
    # 6, 8, 10 -> 10 (range starts at 10); 12 -> 13 (missing, toward the key); 14; 16.. -> 14
    expected_hu = np.array([100, 100, 100, 130, 140, 140, 140, 140, 140], dtype=np.float64)
    np.testing.assert_allclose(inputs[:, 20, 25], _window(expected_hu), rtol=1e-5)
    sample = packed['data_samples']
    assert len(sample.gt_instances.bboxes) == 0
    # [10, 10, 22, 22] * 1.25 = [12.5, 12.5, 27.5, 27.5]; flipped in 50 px: [22.5, 12.5, 37.5, 27.5]
    np.testing.assert_allclose(sample.gt_hard_negatives.bboxes.numpy(), [[22.5, 12.5, 37.5, 27.5]])
    assert sample.metainfo['scale_factor'] == (1.25, 1.25)


def test_category_mismatch_is_an_error(deeplesion_root, tmp_path):
    with open(os.path.join(deeplesion_root, 'train.json')) as f:
        content = json.load(f)
    content['categories'] = [dict(id=1, name='Lesion')]
    with open(tmp_path / 'bad.json', 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match="no category named \\['lesion'\\]"):
        DeepLesionDataset(ann_file=str(tmp_path / 'bad.json'), data_prefix=dict(img=''),
                          pipeline=[])


def test_missing_image_field_is_an_error(deeplesion_root, tmp_path):
    with open(os.path.join(deeplesion_root, 'train.json')) as f:
        content = json.load(f)
    del content['images'][1]['slice_range']
    with open(tmp_path / 'bad.json', 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match=r"image id 2 .*lacks \['slice_range'\]"):
        DeepLesionDataset(ann_file=str(tmp_path / 'bad.json'), data_prefix=dict(img=''),
                          pipeline=[])
