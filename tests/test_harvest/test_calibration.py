"""V_M^cal (``harvest.v_m_holdout``): the held-out part of V_M on whose harvest candidates the
threshold is chosen (docs/method.md#harvest-calibration)."""
import json

import numpy as np
import pytest
from mmengine.config import Config

from mmlesion.harvest import HarvestRunner
from mmlesion.harvest.rules import holdout_threshold
from mmlesion.harvest.settings import (
    HarvestSets,
    HarvestSettings,
    holdout_keys,
    load_harvest_sets,
)
from mmlesion.structures.proposals import Proposal
from mmlesion.structures.tracklet import as_tracklet
from mmlesion.structures.volume import AnnotationSet, volume_info_from_key
from mmlesion.utils.fileio import atomic_dump_pickle
from mmlesion.utils.safe_pickle import load_pickle

CAL = '000004_01_01_001-040'
FIT = '000005_01_01_001-040'
VH = '000006_01_01_001-040'


def prop(key, index, s, z=(3, 4, 5), box=(10.0, 10.0, 20.0, 20.0), label=-1):
    """A proposal whose lesion score s_g * s_c is ``s`` (s_c = 1)."""
    rows = [(zz, [*box, s if zz == z[len(z) // 2] else s / 2]) for zz in z]
    return Proposal(key=key, index=index, tracklet=as_tracklet(rows), label=label, s_c=1.0)


def test_holdout_keys_are_a_seeded_draw_of_the_asked_size():
    keys = [f'{i:06d}_01_01_001-010' for i in range(30)]
    cal = holdout_keys(keys, 1 / 3, seed=0)
    assert len(cal) == 10 and cal == sorted(cal) and set(cal) <= set(keys)
    assert holdout_keys(keys[::-1], 1 / 3, seed=0) == cal  # the order of V_M does not matter
    assert holdout_keys(keys, 1 / 3, seed=1) != cal
    # at least one volume held out, at least one kept
    assert len(holdout_keys(keys[:3], 0.01, seed=0)) == 1
    assert len(holdout_keys(keys[:3], 0.99, seed=0)) == 2


@pytest.mark.parametrize('bad', [0.0, 1.0, -0.2, 1.5])
def test_a_holdout_outside_0_1_is_refused(bad):
    cfg = dict(harvest=dict(image_root='i', train_ann='t', v_m_ann='m', v_h_test_ann='h',
                            v_m_holdout=bad, lpg=dict(config='a'), lpc=dict(config='b')))
    with pytest.raises(ValueError, match='v_m_holdout must be a fraction'):
        HarvestSettings.from_config(cfg)


def test_sets_and_round1_file_with_a_holdout(synthetic_converted, tmp_path):
    """V_M^cal leaves V_M for V_H: it is scanned like V_H and only its RECIST marks reach the
    round-1 training file."""
    root = synthetic_converted
    gt = root / 'ground_truth'
    vm = load_pickle(str(gt / 'Revised-Train-VM.pkl'))
    vh_test = load_pickle(str(gt / 'Revised-Train-VHtest.pkl'))
    with open(root / 'annotations' / 'train.json') as f:
        train = json.load(f)
    others = sorted(v['id'] for v in train['volumes'])
    others = [k for k in others if f'{k}.annot' not in vm and f'{k}.annot' not in vh_test]
    # a second completely annotated volume (a hand-made lesion: the test is about the sets)
    vm[f'{others[0]}.annot'] = {1: [[5.0, 5.0, 25.0, 25.0, 1.0, 1.0]]}
    vm_path = tmp_path / 'VM2.pkl'
    atomic_dump_pickle(vm, vm_path, protocol=2)
    harvest = dict(image_root=str(root / 'Images_png'), series_info=str(root / 'DL_info.csv'),
                   train_ann=str(root / 'annotations' / 'train.json'), v_m_ann=str(vm_path),
                   v_h_test_ann=str(gt / 'Revised-Train-VHtest.pkl'),
                   lpg=dict(config='x'), lpc=dict(config='y'))
    plain = load_harvest_sets(HarvestSettings.from_config(dict(harvest=harvest)))
    held = load_harvest_sets(HarvestSettings.from_config(
        dict(harvest=dict(harvest, v_m_holdout=0.5))))
    assert plain.v_m_cal is None and len(plain.v_m.volumes) == 2
    assert len(held.v_m.volumes) == 1 and len(held.v_m_cal.volumes) == 1
    cal = held.v_m_cal.keys[0]
    assert cal not in held.v_m.volumes and cal in held.v_h_keys
    assert set(held.scan_volumes) == set(plain.scan_volumes)
    assert held.counts()['V_M_cal'] == 1 and 'V_M_cal' not in plain.counts()
    # round 1's training file: the complete marks of V_M only, V_M^cal keeps its RECIST marks
    runner = HarvestRunner(Config(dict(harvest=dict(harvest, v_m_holdout=0.5))),
                           str(tmp_path / 'work'))
    out = tmp_path / 'round1.json'
    runner.round1_training_file(str(out))
    with open(out) as f:
        coco = json.load(f)
    complete = {v['id'] for v in coco['volumes'] if v.get('complete')}
    assert complete == set(held.v_m.keys)


def test_holdout_threshold_by_hand():
    # scores 0.9 (hit) 0.8 (hit) 0.7 (miss) 0.6 (hit) 0.5 (miss): precision 1, 1, 2/3, 3/4, 3/5
    cands = [prop(CAL, i, s) for i, s in enumerate((0.9, 0.8, 0.7, 0.6, 0.5))]
    correct = [True, True, False, True, False]
    assert holdout_threshold(cands, correct, 0.95) == pytest.approx(0.8)
    assert holdout_threshold(cands, correct, 0.75) == pytest.approx(0.6)
    assert holdout_threshold(cands, [False] * 5, 0.5) is None
    with pytest.raises(ValueError, match='5 candidates but 4'):
        holdout_threshold(cands, correct[:4])


def _runner_with(sets: HarvestSets, precision: float) -> HarvestRunner:
    cfg = Config(dict(harvest=dict(image_root='i', train_ann='t', v_m_ann='m', v_h_test_ann='h',
                                   v_m_holdout=0.5, precision=precision,
                                   lpg=dict(config='a'), lpc=dict(config='b'))))
    runner = HarvestRunner(cfg, 'unused')
    runner._sets = sets
    return runner


def _aset(boxes):
    return AnnotationSet('hand', 'lh2d', {k: volume_info_from_key(k) for k in boxes},
                         {k: np.asarray(v, np.float64).reshape(-1, 5) for k, v in boxes.items()})


def test_calibration_judges_held_out_candidates_by_the_complete_labels():
    """Only V_M^cal's candidates count; a candidate is correct when it hits a lesion on its
    slice (P3D rule), duplicates included."""
    cal = _aset({CAL: [[4, 10, 10, 20, 20], [40, 100, 100, 130, 130]]})
    fit = _aset({FIT: [[4, 10, 10, 20, 20]]})
    sets = HarvestSets(train=fit, v_m=fit, v_h_test=_aset({}), v_h_keys=[CAL, VH],
                       scan_volumes={}, v_m_cal=cal)
    rest = [prop(CAL, 0, 0.9),  # hits lesion 0
            prop(CAL, 1, 0.85, z=(39, 40, 41), box=(100.0, 100.0, 130.0, 130.0)),  # lesion 1
            prop(CAL, 2, 0.8, box=(60.0, 60.0, 80.0, 80.0)),  # misses
            prop(CAL, 3, 0.7, z=(4, 5, 6)),  # lesion 0 again, on its slice: correct
            prop(CAL, 4, 0.6, z=(20, 21, 22)),  # right box, no lesion on its slices: wrong
            prop(VH, 0, 0.99, box=(60.0, 60.0, 80.0, 80.0))]  # V_H: not a calibration case
    out = _runner_with(sets, 0.7)._calibration(rest)
    # precision at 0.9 / 0.85 / 0.8 / 0.7 / 0.6: 1, 1, 2/3, 3/4, 3/5 -> lowest t with >= 0.7
    assert out == dict(threshold=pytest.approx(0.7), volumes=1, lesions=2, candidates=5,
                       correct_candidates=3, above_threshold=4, precision=0.75)
    strict = _runner_with(sets, 0.95)._calibration(rest)
    assert strict['threshold'] == pytest.approx(0.85) and strict['precision'] == 1.0
    # nothing correct: no threshold, nothing above it
    none = _runner_with(sets, 0.95)._calibration(rest[2:3])
    assert none['threshold'] is None and none['above_threshold'] == 0 and none['precision'] is None
    sets.v_m_cal = None
    assert _runner_with(sets, 0.95)._calibration(rest) is None
