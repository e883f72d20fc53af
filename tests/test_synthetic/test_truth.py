"""truth.json lesion attributes lined up with an annotation set's ground truth, in its order."""
import numpy as np
import pytest

from mmlesion.synthetic.truth import lesion_values, load_truth


def _truth():
    # one volume: two lesions on slice 12 (file order b, a) and one on slice 10
    lesions = [dict(key_slice=12, box2d=[50.0, 50.0, 60.0, 58.0], organ='liver', origin='real'),
               dict(key_slice=10, box2d=[10.0, 10.0, 20.0, 20.0], organ='lung'),
               dict(key_slice=12, box2d=[30.0, 30.0, 40.0, 40.0], organ='lung', origin=None)]
    return dict(info={}, volumes=[dict(key='000001_01_01_008-016', lesions=lesions)])


def test_values_follow_the_annotation_order_and_default():
    # the annotation set sorts by z, then file order
    boxes = {'000001_01_01_008-016': np.array([[10, 10, 10, 20, 20],
                                               [12, 50, 50, 60, 58.0004],
                                               [12, 30, 30, 40, 40]], dtype=np.float64)}
    assert lesion_values(_truth(), boxes, 'organ') == {
        '000001_01_01_008-016': ['lung', 'liver', 'lung']}
    # missing or null -> default
    assert lesion_values(_truth(), boxes, 'origin', default='synthetic') == {
        '000001_01_01_008-016': ['synthetic', 'real', 'synthetic']}


def test_each_lesion_is_used_once_and_mismatches_are_named():
    key = '000001_01_01_008-016'
    twice = {key: np.array([[10, 10, 10, 20, 20], [10, 10, 10, 20, 20]], dtype=np.float64)}
    with pytest.raises(ValueError, match=r"'000001_01_01_008-016' has no lesion with key "
                       r'slice 10 and box \[10.0, 10.0, 20.0, 20.0\] \(ground truth 1\)'):
        lesion_values(_truth(), twice, 'organ', path='t.json')
    with pytest.raises(ValueError, match='no volume'):
        lesion_values(_truth(), {'000002_01_01_008-016': np.zeros((0, 5))}, 'organ')
    # off by one slice is another lesion
    with pytest.raises(ValueError, match='key slice 11'):
        lesion_values(_truth(), {key: np.array([[11, 10, 10, 20, 20]], float)}, 'organ')


def test_load_truth_refuses_other_json(tmp_path):
    p = tmp_path / 'coco.json'
    p.write_text('{"images": [], "annotations": []}')
    with pytest.raises(ValueError, match='coco.json: not a truth.json'):
        load_truth(p)
