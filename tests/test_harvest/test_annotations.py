"""The training files of harvest rounds: R ∪ V_M marks, top-slice boxes, deduplication, and the
hard negatives reaching the HNSL through DeepLesionDataset."""
import copy

import numpy as np
import pytest

from mmlesion.harvest.annotations import ProposalBox, add_proposal_boxes, merge_complete_marks
from mmlesion.structures.volume import AnnotationSet, VolumeInfo

KEY = '000001_01_01_001-010'
KEY2 = '000002_01_01_005-012'


def base_json():
    img = dict(id=1, file_name='000001_01_01/004.png', width=64, height=48, volume_id=KEY,
               series='000001_01_01', slice_index=4, slice_range=[1, 10],
               spacing=[0.8, 0.8, 5.0], slice_interval=5.0, dicom_window=[-175, 275],
               split='train', patient_index=1, study_index=1, series_id=1, gender=None, age=None)
    ann = dict(id=1, image_id=1, category_id=1, bbox=[10.0, 10.0, 10.0, 10.0], area=100.0,
               iscrowd=0, recist=None, diameters_px=None, lesion_type=-1, noisy=False,
               source='recist', hard_negative=False, csv_row=2)
    vols = [dict(id=KEY, series='000001_01_01', slice_range=[1, 10], spacing=[0.8, 0.8, 5.0],
                 split='train', complete=False),
            dict(id=KEY2, series='000002_01_01', slice_range=[5, 12], spacing=[0.7, 0.7, 2.0],
                 split='train', complete=False)]
    return dict(info={}, categories=[dict(id=1, name='lesion')], images=[img],
                annotations=[ann], volumes=vols)


def test_round1_adds_the_v_m_marks_once():
    vm = AnnotationSet('VM.pkl', 'lh2d', {KEY: VolumeInfo(KEY, '000001_01_01', (1, 10))},
                       {KEY: np.array([[4, 10.5, 10.5, 20.5, 20.5],  # the R mark again
                                       [7, 30, 30, 40, 44]], float)})
    base = base_json()
    out, counts = merge_complete_marks(base, vm)
    assert counts == dict(added=1, already_marked=1, volumes=1)
    assert base == base_json()  # the input is not modified
    assert [(im['id'], im['slice_index']) for im in out['images']] == [(1, 4), (2, 7)]
    new = out['images'][1]
    assert new['file_name'] == '000001_01_01/007.png' and new['width'] == 64
    assert new['spacing'] == [0.8, 0.8, 5.0] and new['volume_id'] == KEY
    a = out['annotations'][1]
    assert a['bbox'] == [30.0, 30.0, 10.0, 14.0] and a['source'] == 'revised'
    assert a['image_id'] == 2 and not a['hard_negative']
    assert {v['id']: v['complete'] for v in out['volumes']} == {KEY: True, KEY2: False}
    other = AnnotationSet('x', 'lh2d', {'000009_01_01_001-002': None}, {})
    with pytest.raises(ValueError, match='not training sub-volumes'):
        merge_complete_marks(base, other)


def test_proposal_boxes_dedup_and_hard_negative_rules():
    e = [ProposalBox(KEY, 4, (10.4, 10.2, 20.1, 20.3), False, 'mined_3d', 0.9, 'P_H^R', 1),
         ProposalBox(KEY, 4, (40, 40, 50, 50), True, 'harvested', 0.7, 'P_H^-', 1),
         ProposalBox(KEY, 4, (15, 15, 25, 25), True, 'harvested', 0.6, 'P_H^-', 1),
         ProposalBox(KEY, 4, (40.5, 40, 50, 50), True, 'harvested', 0.6, 'P_M^-', 1),
         ProposalBox(KEY2, 8, (5, 6, 15, 16), False, 'harvested', 0.42, 'P_H^+', 1)]
    vols = {KEY2: VolumeInfo(KEY2, '000002_01_01', (5, 12), image_size=(32, 40))}
    out, counts = add_proposal_boxes(base_json(), e, vols)
    assert counts == dict(positives=1, hard_negatives=1, duplicates=2, overlapping_lesion=1,
                          replaced_hard_negatives=0)
    by_img = {(im['volume_id'], im['slice_index']): im for im in out['images']}
    im2 = by_img[(KEY2, 8)]
    assert im2['width'] == 32 and im2['height'] == 40 and im2['spacing'] == [0.7, 0.7, 2.0]
    anns = {(a['image_id'], tuple(a['bbox'])): a for a in out['annotations']}
    neg = anns[(by_img[(KEY, 4)]['id'], (40.0, 40.0, 10.0, 10.0))]
    assert neg['hard_negative'] and neg['harvest_pool'] == 'P_H^-' and neg['score'] == 0.7
    pos = anns[(im2['id'], (5.0, 6.0, 10.0, 10.0))]
    assert not pos['hard_negative'] and pos['source'] == 'harvested'
    assert pos['harvest_round'] == 1
    # a later positive over an earlier hard negative replaces it
    again, c2 = add_proposal_boxes(out, [ProposalBox(KEY, 4, (41, 41, 51, 51), False,
                                                     'harvested', 0.9, 'P_H^+', 2)])
    assert c2['replaced_hard_negatives'] == 1 and c2['positives'] == 1
    assert not any(a['hard_negative'] for a in again['annotations']
                   if a['image_id'] == by_img[(KEY, 4)]['id'])
    # ids are consecutive in (volume, slice) order
    assert [im['id'] for im in again['images']] == list(range(1, len(again['images']) + 1))
    with pytest.raises(ValueError, match='outside sub-volume'):
        add_proposal_boxes(base_json(), [e[0]._replace(z=11)])
    with pytest.raises(ValueError, match='image size is unknown'):
        add_proposal_boxes(base_json(), [e[4]])


def test_next_round_file_reaches_hnsl(tmp_path, synthetic_converted):
    """A hard negative written by a round is read by DeepLesionDataset and packed as
    ``gt_hard_negatives`` for the HNSL."""
    import json

    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    root = synthetic_converted
    train = json.loads((root / 'annotations' / 'train.json').read_text())
    im = train['images'][0]
    box = ProposalBox(im['volume_id'], im['slice_index'], (1.0, 1.0, 9.0, 9.0), True,
                      'harvested', 0.8, 'P_H^-', 1)
    out, counts = add_proposal_boxes(train, [box])
    assert counts['hard_negatives'] == 1  # the corner of a CT slice holds no lesion
    path = tmp_path / 'next_train.json'
    path.write_text(json.dumps(out))
    ds = DATASETS.build(dict(
        type='DeepLesionDataset', data_root=str(root), ann_file=str(path),
        data_prefix=dict(img='Images_png/'), pipeline=[
            dict(type='LoadMultiSliceFromFile', num_slices=3),
            dict(type='LoadLesionAnnotations', with_bbox=True),
            dict(type='PackLesionInputs')]))
    idx = next(i for i in range(len(ds))
               if ds.get_data_info(i)['img_id'] == next(
                   x['id'] for x in out['images'] if x['volume_id'] == im['volume_id']
                   and x['slice_index'] == im['slice_index']))
    sample = ds[idx]['data_samples']
    np.testing.assert_allclose(sample.gt_hard_negatives.bboxes.numpy(), [[1, 1, 9, 9]])
    assert copy.deepcopy(out) == out
