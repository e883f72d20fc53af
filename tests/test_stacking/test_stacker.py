import numpy as np
import pytest

from mmlesion.stacking import stack_volume, tracklets_to_lh
from mmlesion.structures import Tracklet


def _box(x, y, w, h, s):
    return [x, y, x + w, y + h, s]


def test_slow_drift_becomes_one_tracklet_with_raw_boxes():
    dets = {z: np.array([_box(100 + 0.5 * (z - 10), 200 - 0.3 * (z - 10), 40 + 0.2 * (z - 10),
                              30, 0.3 + 0.05 * (z - 10))]) for z in range(10, 20)}
    (trk,) = stack_volume(dets, (512, 512))
    assert trk.z.tolist() == list(range(10, 20))
    np.testing.assert_array_equal(trk.boxes, np.vstack([dets[z] for z in range(10, 20)]))
    assert not trk.filled.any()
    assert trk.score == pytest.approx(0.75) and trk.best_index == 9
    np.testing.assert_allclose(trk.box3d, [100, 197.3, 9.5, 104.5 + 41.8, 230, 19.5])


def test_iou_below_link_threshold_splits():
    # 40x40 box jumps by 10 px at slice 5: IoU = 1200 / 2000 = 0.6
    dets = {z: np.array([_box(100 + (10 if z >= 5 else 0), 100, 40, 40, 0.5)]) for z in range(10)}
    trks = stack_volume(dets, (512, 512))
    assert sorted(t.z.tolist() for t in trks) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_one_slice_gap_is_bridged_by_extension_and_fusion():
    dets = {z: np.array([_box(100, 100, 40, 40, 0.9 if z == 12 else 0.5)])
            for z in range(10, 21) if z != 15}
    dets[15] = np.array([_box(100, 100, 40, 40, 0.05)])  # below t_G: a missed slice
    (trk,) = stack_volume(dets, (512, 512))
    assert trk.z.tolist() == list(range(10, 21))
    assert trk.filled.tolist() == [z == 15 for z in range(10, 21)]
    np.testing.assert_allclose(trk.boxes[5], [100, 100, 140, 140, 0.5])
    assert trk.score == pytest.approx(0.9)
    # without extension the gap splits the lesion
    assert len(stack_volume(dets, (512, 512), extend=0)) == 2


def test_interpolated_gap_box_and_two_slice_gap():
    dets = {10: np.array([_box(100, 100, 40, 40, 0.6)]),
            12: np.array([_box(102, 100, 40, 40, 0.4)])}  # IoU 38*40/(3200-1520) = 0.905
    (trk,) = stack_volume(dets, (512, 512))
    np.testing.assert_allclose(trk.boxes[1], [101, 100, 141, 140, 0.4])
    far = {10: dets[10], 13: dets[12]}  # two missing slices: not connected with extend=1
    assert len(stack_volume(far, (512, 512))) == 2
    (bridged,) = stack_volume(far, (512, 512), extend=2)
    assert bridged.z.tolist() == [10, 11, 12, 13] and bridged.filled.sum() == 2


def test_fusion_takes_the_best_successor():
    dets = {z: np.array([_box(100, 100, 40, 40, 0.5)]) for z in range(10, 15)}
    dets[16] = np.array([_box(100, 100, 40, 40, 0.6), _box(103, 100, 40, 40, 0.7)])
    dets[17] = dets[16].copy()
    trks = stack_volume(dets, (512, 512))
    assert len(trks) == 2
    fused = [t for t in trks if t.z[0] == 10][0]
    assert fused.z.tolist() == [10, 11, 12, 13, 14, 15, 16, 17]
    np.testing.assert_allclose(fused.boxes[-1], [100, 100, 140, 140, 0.6])  # IoU 1 beats 0.86
    other = [t for t in trks if t.z[0] == 16][0]
    assert other.boxes[0, 0] == 103


def test_low_scores_dropped_and_boxes_clipped_to_the_image():
    dets = {0: np.array([_box(10, 10, 20, 20, 0.1),  # score must be > t_G
                         _box(-5, -8, 25, 28, 0.11),  # clipped to [0, 0, 20, 20]
                         _box(600, 600, 50, 50, 0.9),  # entirely outside: dropped
                         _box(500, 100, 40, 20, 0.5)])}  # clipped at W = 512
    trks = stack_volume(dets, (512, 256))
    boxes = np.vstack([t.boxes for t in trks])
    assert len(trks) == 2
    np.testing.assert_allclose(sorted(boxes.tolist()), [[0, 0, 20, 20, 0.11],
                                                        [500, 100, 512, 120, 0.5]])
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 512).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 256).all()
    assert stack_volume(dets, (512, 256), score_thr=0.95) == []


def test_parallel_lesions_and_determinism():
    rng = np.random.default_rng(0)
    dets = {}
    for z in range(20):
        rows = [_box(100 + 0.5 * z, 100, 30, 30, 0.8), _box(300, 300 - 0.5 * z, 50, 40, 0.6)]
        rows += [_box(*rng.uniform(0, 450, 2), 20, 20, float(rng.choice([0.2, 0.3, 0.4])))
                 for _ in range(4)]  # tied scores: order must not depend on the row order
        dets[z] = np.array(rows)
    out = stack_volume(dets, (512, 512))
    long = [t for t in out if len(t) == 20]
    assert len(long) == 2 and long[0].score == pytest.approx(0.8)
    # same detections, shuffled rows and reversed slice order: identical output
    shuffled = {z: dets[z][rng.permutation(len(dets[z]))] for z in sorted(dets, reverse=True)}
    again = stack_volume(shuffled, (512, 512))
    assert len(again) == len(out)
    for a, b in zip(out, again):
        np.testing.assert_array_equal(a.z, b.z)
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert [t.score for t in out] == sorted((t.score for t in out), reverse=True)


def test_tracklet_container_and_lh_conversion():
    t = Tracklet(z=[5, 6], boxes=[[1, 2, 3, 4, 0.5], [1, 2, 3, 5, 0.7]])
    assert len(t) == 2 and t.score == 0.7 and t.filled.tolist() == [False, False]
    assert t.to_lh() == [(5, [1.0, 2.0, 3.0, 4.0, 0.5]), (6, [1.0, 2.0, 3.0, 5.0, 0.7])]
    assert tracklets_to_lh({'k': [t]}) == {'k': [t.to_lh()]}
    with pytest.raises(ValueError, match='n >= 1 slices'):
        Tracklet(z=[], boxes=np.zeros((0, 5)))


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match=r'slice 3: detections must be \(n, 5\)'):
        stack_volume({3: np.zeros((2, 4))}, (512, 512))
    with pytest.raises(ValueError, match='slice 3, detection 1: non-finite'):
        stack_volume({3: np.array([[0, 0, 1, 1, 0.5], [0, 0, np.nan, 1, 0.5]])}, (512, 512))
    with pytest.raises(ValueError, match='not an integer'):
        stack_volume({3.5: np.zeros((0, 5))}, (512, 512))
    with pytest.raises(ValueError, match='image_size'):
        stack_volume({}, (0, 512))
    assert stack_volume({}, (512, 512)) == []


@pytest.mark.parametrize('plus_one', [False, True])
def test_admissible_pairs_use_the_library_iou_values(plus_one):
    from mmlesion.stacking.stacker import _admissible
    from mmlesion.structures.boxes import box_area_2d, box_iou_2d
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 60, (300, 2))
    wh = rng.uniform(1, 40, (300, 2))
    dets = np.concatenate([xy, xy + wh, rng.uniform(0, 1, (300, 1))], axis=1)
    rows, areas = dets.tolist(), box_area_2d(dets, plus_one).tolist()
    for box in dets[:40, :4] + rng.normal(0, 1, (40, 4)):
        ref = box_iou_2d(box[None], dets, plus_one)[0]
        for thr in (0.0, 0.3, 0.8):
            got = _admissible(tuple(box.tolist()), rows, areas, 10, 290, thr, plus_one)
            want = [(j, ref[j]) for j in range(10, 290) if ref[j] > thr]
            assert [j for j, _ in got] == [j for j, _ in want]
            assert [v for _, v in got] == [float(v) for _, v in want]  # bit-identical


class _Pairs:
    """A mapping-like list of (z, dets) pairs: one slice index may come twice."""

    def __init__(self, *pairs):
        self.pairs = pairs

    def items(self):
        return iter(self.pairs)


def test_slice_given_twice_and_error_order():
    box = np.array([[10, 10, 50, 50, 0.5]])
    with pytest.raises(ValueError, match='slice 3 given twice'):
        stack_volume(_Pairs((3, box), (3.0, box)), (512, 512))
    # the first occurrence kept nothing: as before, the second one is used
    (trk,) = stack_volume(_Pairs((3, box * [1, 1, 1, 1, 0.1]), (3.0, box)), (512, 512))
    assert trk.z.tolist() == [3]
    # errors are reported for the first offending slice in the mapping's order
    with pytest.raises(ValueError, match='slice 7, detection 0: non-finite'):
        stack_volume({7: box * np.nan, 2.5: box}, (512, 512))
    with pytest.raises(ValueError, match='not an integer'):
        stack_volume({2.5: box, 7: box * np.nan}, (512, 512))


def test_from_valid_arrays_is_a_plain_tracklet():
    boxes = np.array([[1., 2, 3, 4, .5], [1, 2, 3, 5, .7]])
    t = Tracklet.from_valid_arrays(np.array([4, 5]), boxes, np.array([False, True]))
    ref = Tracklet([4, 5], [[1, 2, 3, 4, .5], [1, 2, 3, 5, .7]], [False, True])
    assert all(np.array_equal(getattr(t, k), getattr(ref, k)) for k in ('z', 'boxes', 'filled'))
    assert len(t) == 2 and t.score == 0.7 and t.filled.tolist() == [False, True]
