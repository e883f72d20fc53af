"""load_annotation_set: the same lesions from mmlesion JSON and from the release pickles, in
mmlesion's frame, with every volume of the set (also empty ones) and clear errors."""
import json

import numpy as np
import pytest
from annotation_case import A, B, C, D, make_coco

from mmlesion.evaluation import load_annotation_set
from mmlesion.utils.fileio import atomic_dump_pickle

EXPECTED_2D = {
    A: [[10, 10, 10, 29, 29], [12, 50, 50, 59, 59]],
    B: [[5, 0, 0, 9, 9], [7, 80, 80, 99, 99]],
    C: [],
    D: [],
}


def _check_2d(ann):
    assert list(ann.volumes) == [A, B, C, D]
    for key, rows in EXPECTED_2D.items():
        np.testing.assert_allclose(ann.boxes_2d[key], np.reshape(rows, (-1, 5)))
    assert ann.num_boxes == 4


def test_json(coco_file):
    ann = load_annotation_set(coco_file)
    assert ann.fmt == 'json'
    _check_2d(ann)  # noisy mark and hard negative left out, empty C and D kept
    assert ann.volumes[A].slice_range == (5, 25) and ann.volumes[A].series == '000001_01_01'
    assert ann.volumes[A].spacing == [0.7, 0.7, 5.0] and ann.volumes[A].slice_interval == 5.0
    assert ann.volumes[D].complete is True and ann.incomplete_volumes() == []
    assert ann.volumes[A].image_size == (128, 128)
    assert sorted(ann.images) == [1, 2, 3, 4, 5]
    vid, z, boxes = ann.images[5]
    assert (vid, z, boxes.shape) == (C, 3, (0, 4))
    assert ann.boxes_3d is None
    kept = load_annotation_set(coco_file, drop_noisy=False)
    assert len(kept.boxes_2d[A]) == 3


def test_lh_2d_pickle_gives_the_same_set(lh2d_file):
    ann = load_annotation_set(lh2d_file)
    assert ann.fmt == 'lh2d' and ann.images is None
    _check_2d(ann)  # 1-based relative -> 0-based absolute
    assert ann.volumes[A].spacing is None and not ann.volumes[A].has_spacing
    assert ann.subset([B + '.annot', A]).keys == [A, B]
    with pytest.raises(ValueError, match='not in the annotation set'):
        ann.subset(['000009_01_01_000-001'])


def test_3d_releases(tmp_path):
    box3d = tmp_path / '3D-Box.pkl'
    atomic_dump_pickle({A: [[11., 11., 31., 31., 4.5, 7.5], [51., 51., 61., 61., -0.5, 0.5]]},
                       box3d)
    ann = load_annotation_set(str(box3d))
    assert ann.fmt == 'lh3d'
    np.testing.assert_allclose(ann.boxes_3d[A], [[10, 10, 9.5, 30, 30, 12.5],
                                                 [50, 50, 4.5, 60, 60, 5.5]])
    # 2D: one box on the slice nearest the z centre (11 and, clamped into the volume, 5)
    np.testing.assert_allclose(ann.boxes_2d[A][:, 0], [5, 11])
    lens = tmp_path / 'lens_manual_1k.pkl'
    atomic_dump_pickle({'val': {B: np.array([[1., 1., 2., 11., 11., 4.]])},
                        'test': {A: np.zeros((0, 6))}}, lens)
    ann = load_annotation_set(str(lens))
    assert ann.fmt == 'lens' and list(ann.volumes) == [A, B]
    np.testing.assert_allclose(ann.boxes_3d[B], [[0, 0, 1.5, 10, 10, 4.5]])  # inclusive z widened
    np.testing.assert_allclose(ann.boxes_2d[B], [[3, 0, 0, 10, 10]])
    assert list(load_annotation_set(str(lens), lens_subset='test').volumes) == [A]


def test_errors_name_the_entry(tmp_path):
    coco = make_coco()
    coco['annotations'][0]['image_id'] = 77
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r'annotation id 1 .*image id 77'):
        load_annotation_set(str(bad))
    coco = make_coco()
    coco['volumes'] = coco['volumes'][1:]
    bad.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match='not in "volumes"'):
        load_annotation_set(str(bad))
    coco = make_coco()
    coco['annotations'][1]['bbox'] = [1, 2, 3]
    bad.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match='annotation id 2: bbox'):
        load_annotation_set(str(bad))
    with pytest.raises(FileNotFoundError):
        load_annotation_set(str(tmp_path / 'none.json'))
    odd = tmp_path / 'odd.pkl'
    atomic_dump_pickle({A: {3: [[5, 5, 1, 1, 3, 3]]}}, odd)
    with pytest.raises(ValueError, match=str(odd)):
        load_annotation_set(str(odd))
