import json
import pickle
import pickletools

import numpy as np
import pytest

from mmlesion.evaluation.detection_io import (
    convert_detections_frame,
    load_lh_annotation_2d,
    load_lh_boxes_3d,
    load_lh_detections,
    save_lh_detections,
)
from mmlesion.evaluation.functional.p3d import evaluate_p3d
from mmlesion.structures import Tracklet
from mmlesion.utils.safe_pickle import UnsafePickleError, load_pickle

KEY = '001344_01_01_012-024'  # slices 12..24
# in memory (mmlesion frame): absolute z, 0-based x/y
MEM = {KEY: [[(18, [99.0, 49.0, 119.0, 69.0, 0.9]), (19, [100.0, 50.0, 120.0, 70.0, 0.8])]],
       '000001_01_01_103-115': []}
# the same in the file (LH frame): z - 12, x/y + 1
FILE = {KEY: [[(6, [100.0, 50.0, 120.0, 70.0, 0.9]), (7, [101.0, 51.0, 121.0, 71.0, 0.8])]],
        '000001_01_01_103-115': []}


def _globals_in(path):
    with open(path, 'rb') as f:
        return [op.name for op, _, _ in pickletools.genops(f.read())
                if op.name in ('GLOBAL', 'STACK_GLOBAL', 'INST', 'OBJ', 'REDUCE')]


@pytest.mark.parametrize('ext', ['pkl', 'json'])
def test_round_trip_with_frame_conversion(tmp_path, ext):
    path = tmp_path / f'dets.{ext}'
    save_lh_detections(MEM, path)
    if ext == 'pkl':
        raw = load_pickle(path)
        assert _globals_in(path) == []  # builtins only: numpy-1/2 and Python-2 readable
        assert pickle.loads(path.read_bytes()) == {k: v for k, v in FILE.items()}
    else:
        raw = json.loads(path.read_text())
        raw = {k: [[(z, b) for z, b in t] for t in v] for k, v in raw.items()}
    assert raw == FILE
    assert load_lh_detections(path) == MEM
    assert load_lh_detections(path, frame='lh') == FILE
    assert not list(tmp_path.glob('.*.tmp'))  # atomic write left no temporary file


def test_save_accepts_tracklet_objects_and_arrays(tmp_path):
    trk = Tracklet(z=[18, 19], boxes=[[99, 49, 119, 69, 0.9], [100, 50, 120, 70, 0.8]])
    arr = np.array([[18, 99, 49, 119, 69, 0.9], [19, 100, 50, 120, 70, 0.8]])
    for dets in ({KEY: [trk]}, {KEY: [arr]}):
        save_lh_detections(dets, tmp_path / 'd.pkl')
        assert load_pickle(tmp_path / 'd.pkl') == {KEY: FILE[KEY]}


def test_numpy_pickles_protocol_2_and_numpy2_scalars(tmp_path):
    obj = {KEY + '.annot': [[(np.int64(6), np.array([100.0, 50.0, 120.0, 70.0, 0.9])),
                             (7, [101.0, 51.0, 121.0, 71.0, np.float64(0.8)])]]}
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f'np{proto}.pkl'
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        loaded = load_lh_detections(path)
        assert loaded[KEY] == [[(18, [99.0, 49.0, 119.0, 69.0, 0.9]),
                                (19, [100.0, 50.0, 120.0, 70.0, 0.8])]]
        assert type(loaded[KEY][0][0][0]) is int and type(loaded[KEY][0][1][1][4]) is float


def test_unsafe_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({KEY: Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError):
        load_lh_detections(path)


def test_frame_errors_are_explicit():
    with pytest.raises(ValueError, match="outside \\[0, 12\\].*'lh' frame"):
        load_lh_detections({KEY: [[(18, [1, 1, 5, 5, 0.5])]]})  # absolute z in an LH file
    with pytest.raises(ValueError, match='not a DeepLesion sub-volume key'):
        load_lh_detections({'volume1': []})
    with pytest.raises(ValueError, match='frame must be one of'):
        load_lh_annotation_2d({}, frame='absolute')
    with pytest.raises(ValueError, match='appears twice'):
        convert_detections_frame({KEY: [], KEY + '.annot': []}, 'lh', 'mmlesion')


def test_annotation_and_3d_box_loaders_by_hand():
    ann = {KEY + '.annot': {6: [[215.383, 176.983, 267.122, 220.374, 6.0, 6.0]],
                            2: [[10.0, 20.0, 30.0, 40.0, 2.0, 2.0]]}}
    mem = load_lh_annotation_2d(ann)
    np.testing.assert_allclose(mem[KEY], [[14, 9, 19, 29, 39],
                                          [18, 214.383, 175.983, 266.122, 219.374]])
    np.testing.assert_allclose(load_lh_annotation_2d(ann, frame='lh')[KEY][1],
                               [6, 215.383, 176.983, 267.122, 220.374])
    boxes = {'000001_01_01_103-115': [[10, 20, 30, 40, -0.5, 13.5]]}  # 13 slices: z <= 12.5
    np.testing.assert_allclose(load_lh_boxes_3d(boxes)['000001_01_01_103-115'],
                               [[9, 19, 102.5, 29, 39, 115.5]])
    np.testing.assert_allclose(load_lh_boxes_3d(boxes, frame='lh', clamp=False)
                               ['000001_01_01_103-115'], [[10, 20, -0.5, 30, 40, 13.5]])


def test_real_release_files_in_both_frames(shared_data_dir):
    lh = shared_data_dir / 'lesion_harvester'
    gt_lh = load_lh_annotation_2d(lh / 'Revised-Test1071.pkl', frame='lh')
    gt_mem = load_lh_annotation_2d(lh / 'Revised-Test1071.pkl')
    assert len(gt_mem) == 1071 and sum(len(v) for v in gt_mem.values()) == 3665
    # ground truth fed back as detections, round-tripped through the file format
    dets_mem = {k: [[(int(r[0]), list(r[1:]) + [1.0])] for r in v] for k, v in gt_mem.items()}
    dets_lh = convert_detections_frame(dets_mem, 'mmlesion', 'lh')
    assert evaluate_p3d(gt_mem, dets_mem).ap == pytest.approx(1.0)
    assert evaluate_p3d(gt_lh, dets_lh).ap == pytest.approx(1.0)
    # mixing frames finds nothing: z and x/y disagree
    assert evaluate_p3d(gt_lh, dets_mem).ap == 0.0
    boxes = load_lh_boxes_3d(lh / '3D-Box.pkl')
    assert len(boxes) == 272 and sum(len(b) for b in boxes.values()) == 874
    from mmlesion.structures.volume_key import parse_volume_key
    for key, b in boxes.items():
        vk = parse_volume_key(key)
        assert b[:, 2].min() >= vk.start - 0.5 and b[:, 5].max() <= vk.end + 0.5
