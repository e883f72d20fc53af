import numpy as np
import pytest

from mmlesion.evaluation.functional.froc import P3D_FP_POINTS
from mmlesion.evaluation.functional.p3d import evaluate_p3d, p3d_overlaps
from mmlesion.structures import Tracklet
from mmlesion.utils.safe_pickle import load_pickle


def _case():
    """Two volumes, three GT; tracklets a (TP), b (misses the slice), c (duplicate), d (TP),
    e (FP)."""
    gt = {
        'V1': [(3, [0, 0, 9, 9]), (3, [50, 50, 59, 59])],
        'V2': [(7, [0, 0, 19, 19])],
    }
    dets = {
        'V1': [
            [(2, [0, 0, 9, 9, 0.5]), (3, [0, 0, 9, 9, 0.9]), (4, [0, 0, 9, 9, 0.4])],  # a
            [(3, [1, 0, 10, 9, 0.7])],  # c: IoU 90/110 with g1, already hit
            [(3, [200, 200, 210, 210, 0.5])],  # e
        ],
        'V2': [
            [(6, [0, 0, 19, 19, 0.8])],  # b: no box on slice 7
            [(7, [0, 0, 19, 19, 0.6])],  # d
        ],
    }
    return gt, dets


def test_p3d_hand_case():
    gt, dets = _case()
    res = evaluate_p3d(gt, dets)
    # ranks a, b, c, d, e -> FROC FPs 0, 1, 1, 1, 2 (c neither TP nor FP), 2 volumes
    np.testing.assert_allclose(res.curve_fps, [0, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(res.curve_sens, [1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # AP: c is a false positive; precision 1, 1/2, 1/3, 2/4, 2/5 -> 1/3 * 1 + 1/3 * 0.5
    np.testing.assert_allclose(res.precision, [1, 1 / 2, 1 / 3, 2 / 4, 2 / 5])
    assert res.ap == pytest.approx(0.5)
    np.testing.assert_allclose(res.sensitivity, [1 / 3, 1 / 3, 1 / 3] + [2 / 3] * 5)
    assert res.n_gt == 3 and res.n_images == 2 and res.n_dets == 5
    assert res.image_keys == ['V1', 'V2']
    assert res.hits_by_image() == {'V1': pytest.approx([True, True, False]),
                                   'V2': pytest.approx([False, True])}
    assert res.gt_hit.tolist() == [True, False, True]
    assert res.scores.tolist() == [0.9, 0.8, 0.7, 0.6, 0.5]


def test_p3d_duplicate_as_froc_fp_option():
    gt, dets = _case()
    res = evaluate_p3d(gt, dets, froc_duplicates='fp')
    np.testing.assert_allclose(res.curve_fps, [0, 0.5, 1.0, 1.0, 1.5])
    assert res.sensitivity[3] == pytest.approx(1 / 3)  # at 1 FP/volume: before d


def test_p3d_ap_duplicate_modes():
    # q hits g1 (already hit by p) and g2 (new): per_gt counts one AP false positive for it
    gt = {'V': [(3, [0, 0, 9, 9]), (4, [0, 0, 9, 9])]}
    dets = {'V': [[(3, [0, 0, 9, 9, 0.9])],
                  [(3, [0, 0, 9, 9, 0.8]), (4, [0, 0, 9, 9, 0.8])]]}
    per_gt = evaluate_p3d(gt, dets)
    per_det = evaluate_p3d(gt, dets, ap_duplicates='per_det')
    assert per_gt.ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert per_det.ap == pytest.approx(1.0)
    np.testing.assert_allclose(per_gt.sensitivity, 1.0)


def test_p3d_volumes_without_detections_count_in_denominator():
    gt = {'V1': [(3, [0, 0, 9, 9])], 'V2': [], 'V3': [], 'V4': {}}
    dets = {'V1': [[(3, [100, 100, 109, 109, 0.9])], [(3, [0, 0, 9, 9, 0.8])]]}
    res = evaluate_p3d(gt, dets)
    assert res.n_images == 4
    np.testing.assert_allclose(res.curve_fps, [0.25, 0.25])
    # one FP = 0.25 FP/volume: 0 sensitivity up to 0.25, then 1
    np.testing.assert_allclose(res.sensitivity, [0, 0, 1, 1, 1, 1, 1, 1])
    alone = evaluate_p3d({'V1': gt['V1']}, dets)
    np.testing.assert_allclose(alone.sensitivity, [0, 0, 0, 0, 1, 1, 1, 1])


def test_p3d_extrapolate_vs_clamp_by_hand():
    gt = {'V': [(3, [0, 0, 9, 9]), (5, [50, 50, 59, 59]), (8, [100, 100, 109, 109]),
                (8, [200, 200, 209, 209])]}
    dets = {'V': [[(3, [0, 0, 9, 9, 0.9])], [(3, [300, 300, 309, 309, 0.8])],
                  [(5, [50, 50, 59, 59, 0.7])]]}
    # curve (0, .25), (1, .25), (1, .5); beyond 1 FP: the line through (0, .25) and (1, .5)
    ext = evaluate_p3d(gt, dets)
    clamp = evaluate_p3d(gt, dets, interp='clamp')
    np.testing.assert_allclose(ext.sensitivity, [0.25, 0.25, 0.25, 0.25, 0.75, 1, 1, 1])
    np.testing.assert_allclose(clamp.sensitivity, [0.25] * 4 + [0.5] * 4)
    assert ext.ap == clamp.ap


def test_p3d_ignores_unknown_volumes_and_uses_first_box_per_slice():
    gt = {'V1.annot': [(3, [0, 0, 9, 9])]}
    dets = {'V1': [[(3, [100, 100, 109, 109, 0.9]), (3, [0, 0, 9, 9, 0.9])]],
            'V9': [[(1, [0, 0, 1, 1, 0.99])], [(2, [0, 0, 1, 1, 0.98])]]}
    res = evaluate_p3d(gt, dets)
    assert res.n_ignored_dets == 2 and res.ignored_keys == ['V9']
    assert res.n_dets == 1 and not res.det_hit[0]  # the first box on slice 3 misses
    np.testing.assert_allclose(
        p3d_overlaps(gt['V1.annot'], dets['V1']), [[0.0]])


def test_p3d_accepts_arrays_and_tracklet_objects():
    gt = {'V': np.array([[3, 0, 0, 9, 9], [4, 20, 20, 29, 29]], dtype=float)}
    as_array = {'V': [np.array([[3, 0, 0, 9, 9, 0.9], [4, 20, 20, 29, 29, 0.3]])]}
    as_obj = {'V': [Tracklet(z=[3, 4], boxes=[[0, 0, 9, 9, 0.9], [20, 20, 29, 29, 0.3]])]}
    for dets in (as_array, as_obj):
        res = evaluate_p3d(gt, dets)
        assert res.ap == pytest.approx(1.0)
        assert res.scores.tolist() == [0.9]
    ov = p3d_overlaps(gt['V'], as_obj['V'] + [[(4, [20, 20, 29, 39, 0.1])]])
    np.testing.assert_allclose(ov, [[1.0, 1.0], [0.0, 100 / 200]])


@pytest.mark.parametrize('dets, match', [
    ({'V': [[]]}, r"'V', tracklet 0: empty tracklet"),
    ({'V': [[(3, [0, 0, 9, 9, 0.9])], [(3, [0, 0, 9, 9])]]}, r"'V', tracklet 1, box 0"),
    ({'V': [[(3.5, [0, 0, 9, 9, 0.9])]]}, 'not an integer'),
    ({'V': [[(3, [0, 0, 9, np.nan, 0.9])]]}, 'non-finite'),
    ({'V': [[(3, 0, 0)]]}, r'tracklet 0, box 0: expected a \(z'),
])
def test_p3d_bad_detections_name_the_place(dets, match):
    with pytest.raises(ValueError, match=match):
        evaluate_p3d({'V': [(3, [0, 0, 9, 9])]}, dets)


def _loop_p3d(gt, dets, thr=0.5):
    """Straightforward loop version of the P3D counting (ground truth for the vectorised code)."""
    def iou(a, b):
        iw = max(min(a[2], b[2]) - max(a[0], b[0]) + 1, 0)
        ih = max(min(a[3], b[3]) - max(a[1], b[1]) + 1, 0)
        u = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - iw * ih
        return iw * ih / u
    entries = [(max(b[4] for _, b in t), k, dict(reversed(t))) for k in sorted(gt)
               for t in dets.get(k, [])]
    order = sorted(range(len(entries)), key=lambda i: -entries[i][0])
    hit = {k: [False] * len(gt[k]) for k in gt}
    tp = fp = 0
    tps, fps = [], []
    for i in order:
        _, k, boxes = entries[i]
        ov = [iou(boxes[z], g) if z in boxes else 0 for z, g in gt[k]]
        if not ov or max(ov) < thr:
            fp += 1
        for j, o in enumerate(ov):
            if o >= thr and not hit[k][j]:
                hit[k][j] = True
                tp += 1
        tps.append(tp)
        fps.append(fp)
    return np.array(tps), np.array(fps)


def test_p3d_matches_a_plain_loop_on_random_data():
    rng = np.random.default_rng(3)
    gt, dets = {}, {}
    for v in range(15):
        key = f'{v:06d}_01_01_000-019'
        gt[key] = [(int(rng.integers(0, 20)), list(rng.uniform(0, 50, 2)) + [0, 0])
                   for _ in range(int(rng.integers(0, 5)))]
        gt[key] = [(z, [x, y, x + 12, y + 12]) for z, (x, y, _, _) in gt[key]]
        trks = []
        for _ in range(8):
            z0, n = int(rng.integers(0, 18)), int(rng.integers(1, 4))
            x, y = rng.uniform(0, 50, 2)
            s = float(np.round(rng.uniform(0, 1), 1))  # coarse scores: ties happen
            trks.append([(z0 + i, [x, y, x + 12 + i, y + 12, s]) for i in range(n)])
        if gt[key] and rng.random() < 0.7:
            z, g = gt[key][0]
            trks.append([(z, list(np.asarray(g) + rng.normal(0, 1, 4)) + [0.55])])
        dets[key] = trks
    res = evaluate_p3d(gt, dets)
    tps, fps = _loop_p3d(gt, dets)
    np.testing.assert_allclose(res.curve_sens, tps / res.n_gt)
    np.testing.assert_allclose(res.curve_fps, fps / 15)
    assert res.curve_sens[-1] > 0


def test_ground_truth_as_detections_on_revised_test1071(shared_data_dir):
    annot = load_pickle(shared_data_dir / 'lesion_harvester' / 'Revised-Test1071.pkl')
    assert len(annot) == 1071
    dets = {}
    for key, slices in annot.items():
        dets[key.replace('.annot', '')] = [[(z, list(box[:4]) + [1.0])]
                                           for z in sorted(slices) for box in slices[z]]
    res = evaluate_p3d(annot, dets)
    assert res.n_gt == 3665 and res.n_images == 1071 and res.n_ignored_dets == 0
    assert res.ap == pytest.approx(1.0)
    np.testing.assert_allclose(res.sensitivity, np.ones(len(P3D_FP_POINTS)))
    np.testing.assert_allclose(res.fp_points, P3D_FP_POINTS)
