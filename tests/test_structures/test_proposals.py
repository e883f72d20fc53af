"""Proposal files: round trip, the documented layout, and clear errors for bad files."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from mmlesion.structures import Tracklet, VolumeInfo
from mmlesion.structures.proposals import (
    PROPOSAL_FORMAT,
    PROPOSAL_VERSION,
    Proposal,
    ProposalSet,
    proposals_from_predictions,
)

KEY_A = '000001_01_01_010-020'
KEY_B = '000002_01_01_005-009'


def make_set():
    preds = [
        SimpleNamespace(volume=VolumeInfo(KEY_A, '000001_01_01', (10, 20), [0.7, 0.7, 5.0], 5.0),
                        image_size=(512, 512),
                        tracklets=[Tracklet([12, 13, 14], [[1, 2, 11, 12, 0.3], [1, 2, 12, 13, 0.8],
                                                           [2, 3, 11, 12, 0.5]],
                                            [False, True, False]),
                                   Tracklet([18], [[100, 100, 120, 125, 0.2]])]),
        SimpleNamespace(volume=VolumeInfo(KEY_B, '000002_01_01', (5, 9)), image_size=None,
                        tracklets=[]),
    ]
    return proposals_from_predictions(preds, meta=dict(score_thr=0.1, config='c.py'))


def test_from_predictions_and_derived_fields():
    pset = make_set()
    assert list(pset.volumes) == [KEY_A, KEY_B]  # volumes without proposals are kept
    assert len(pset) == 2 and pset.label_counts() == dict(positive=0, negative=0, unknown=2)
    p = pset.proposals[0]
    assert (p.key, p.index, p.s_g, p.best_z) == (KEY_A, 0, 0.8, 13)
    np.testing.assert_allclose(p.best_box, [1, 2, 12, 13, 0.8])
    np.testing.assert_allclose(p.box3d, [1, 2, 11.5, 12, 13, 14.5])
    assert pset.volumes[KEY_A].image_size == (512, 512)


def test_round_trip_and_layout(tmp_path):
    pset = make_set()
    pset.proposals[0].label, pset.proposals[0].label_source = 1, 'complete'
    pset.proposals[0].gt_index, pset.proposals[1].s_c = 0, 0.25
    path = tmp_path / 'proposals.json'
    pset.save(path)
    raw = json.loads(path.read_text())
    assert (raw['format'], raw['version']) == (PROPOSAL_FORMAT, PROPOSAL_VERSION)
    v = raw['volumes'][0]
    assert (v['key'], v['series'], v['slice_range'], v['spacing']) == (
        KEY_A, '000001_01_01', [10, 20], [0.7, 0.7, 5.0])
    p = v['proposals'][0]
    assert (p['s_g'], p['best_z'], p['label'], p['label_source']) == (0.8, 13, 1, 'complete')
    assert p['z'] == [12, 13, 14] and p['filled'] == [False, True, False]
    assert raw['volumes'][1]['proposals'] == []
    back = ProposalSet.load(path)
    assert back.path == str(path) and back.meta == dict(score_thr=0.1, config='c.py')
    assert list(back.volumes) == [KEY_A, KEY_B]
    assert back.volumes[KEY_A].spacing == [0.7, 0.7, 5.0]
    assert back.volumes[KEY_A].slice_interval == 5.0
    for a, b in zip(pset, back):
        assert (a.key, a.index, a.label, a.label_source, a.gt_index, a.s_c) == (
            b.key, b.index, b.label, b.label_source, b.gt_index, b.s_c)
        np.testing.assert_array_equal(a.tracklet.z, b.tracklet.z)
        np.testing.assert_array_equal(a.tracklet.boxes, b.tracklet.boxes)
        np.testing.assert_array_equal(a.tracklet.filled, b.tracklet.filled)


def test_empty_set_round_trips(tmp_path):
    pset = ProposalSet({KEY_B: VolumeInfo(KEY_B, '000002_01_01', (5, 9))})
    pset.save(tmp_path / 'p.json')
    back = ProposalSet.load(tmp_path / 'p.json')
    assert len(back) == 0 and list(back.volumes) == [KEY_B]


def test_bad_files_name_the_file(tmp_path):
    path = tmp_path / 'p.json'
    with pytest.raises(FileNotFoundError, match='p.json'):
        ProposalSet.load(path)
    path.write_text('')
    with pytest.raises(ValueError, match='p.json: empty file'):
        ProposalSet.load(path)
    make_set().save(path)
    text = path.read_text()
    path.write_text(text[:len(text) // 2])  # truncated
    with pytest.raises(ValueError, match='p.json: not a complete JSON'):
        ProposalSet.load(path)
    path.write_text(json.dumps({'format': 'coco'}))
    with pytest.raises(ValueError, match='not a proposal file'):
        ProposalSet.load(path)
    path.write_text(json.dumps({'format': PROPOSAL_FORMAT, 'version': 99, 'volumes': []}))
    with pytest.raises(ValueError, match='version 99'):
        ProposalSet.load(path)


@pytest.mark.parametrize('edit,match', [
    (lambda p: p.update(z=[1, 2, 3]), 'outside the volume'),  # relative z by mistake
    (lambda p: p.update(boxes=[[1, 2, 3]] * 3), r'\[x1, y1, x2, y2, score\]'),
    (lambda p: p.update(s_g=0.1), 'not the max slice score'),
    (lambda p: p.update(label=2), 'label must be one of'),
    (lambda p: p.update(label_source='maybe'), 'label_source'),
    (lambda p: p.pop('z'), '"z" is missing'),
])
def test_malformed_proposal_names_volume_and_proposal(tmp_path, edit, match):
    raw = make_set().to_dict()
    edit(raw['volumes'][0]['proposals'][0])
    path = tmp_path / 'p.json'
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=match) as e:
        ProposalSet.load(path)
    assert f'{path}, volume {KEY_A}, proposal 0' in str(e.value)


def test_duplicate_volume_and_foreign_proposal():
    raw = make_set().to_dict()
    raw['volumes'].append(raw['volumes'][0])
    with pytest.raises(ValueError, match='listed twice'):
        ProposalSet.from_dict(raw, 'x.json')
    with pytest.raises(ValueError, match='not in the set'):
        ProposalSet({}, [Proposal(KEY_A, 0, Tracklet([12], [[0, 0, 1, 1, 0.5]]))])
