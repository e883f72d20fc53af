"""tools/eval_p3d.py: the same numbers as P3DMetric on the same inputs, from JSON or LH pickles,
numpy-pickled detections read safely, JSON and plot outputs, clear errors."""
import importlib.util
import json
import os.path as osp
import pickle

import numpy as np
import pytest
from mmengine.evaluator import Evaluator

from mmlesion.cli.eval_p3d import main
from mmlesion.evaluation import P3DMetric
from mmlesion.evaluation.detection_io import save_lh_detections
from mmlesion.utils.fileio import atomic_dump_pickle

HERE = osp.dirname(osp.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    'annotation_case', osp.join(HERE, '..', 'test_evaluation',
                                'annotation_case.py'))
case = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(case)


@pytest.fixture
def inputs(tmp_path):
    coco = tmp_path / 'set.json'
    coco.write_text(json.dumps(case.make_coco()))
    lh = tmp_path / 'Revised-Set.pkl'
    atomic_dump_pickle(case.make_lh2d(), lh, protocol=2)
    det = tmp_path / 'det.pkl'
    save_lh_detections(case.TRACKLETS, det)  # LH frame on disk
    return dict(coco=str(coco), lh=str(lh), det=str(det), tmp=tmp_path)


def _metric(ann, interp='extrapolate'):
    ev = Evaluator([P3DMetric(ann_file=ann, interp=interp)])
    ev.process([dict(volume_id=k, tracklets=case.TRACKLETS.get(k, []))
                for k in (case.A, case.B, case.C, case.D)])
    out = ev.evaluate(4)
    return out['p3d/AP'], [out[f'p3d/sens@{t:g}'] for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16)]


@pytest.mark.parametrize('ann', ['coco', 'lh'])
@pytest.mark.parametrize('interp', ['extrapolate', 'clamp'])
def test_agrees_with_p3d_metric(inputs, ann, interp, capsys):
    summary = main(['--ann', inputs[ann], '--det', inputs['det'], '--interp', interp])
    ap, sens = _metric(inputs[ann], interp)
    assert summary['ap'] == pytest.approx(ap) == pytest.approx(17 / 30)
    assert summary['sensitivity'] == pytest.approx(sens)
    assert summary['fps'] == [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
    printed = capsys.readouterr().out
    assert 'AP 0.5667' in printed and '4 volumes, 4 lesions, 5 tracklets' in printed


def test_json_out_plot_and_numpy_pickles(inputs):
    # detections pickled with numpy arrays / scalars (as numpy 1 or 2 writes them)
    det = {k: [[(np.int64(z), np.asarray(b, dtype=np.float64)) for z, b in trk]
               for trk in trks] for k, trks in case.TRACKLETS.items()}
    lh_frame = {k: [[(z - int(k[13:16]), b + np.array([1, 1, 1, 1, 0])) for z, b in trk]
                    for trk in trks] for k, trks in det.items()}
    path = inputs['tmp'] / 'numpy_det.pkl'
    with open(path, 'wb') as f:
        pickle.dump(lh_frame, f, protocol=4)
    out_json, out_png = inputs['tmp'] / 'froc.json', inputs['tmp'] / 'froc.png'
    summary = main(['--ann', inputs['lh'], '--det', str(path), '--json-out', str(out_json),
                    '--plot', str(out_png)])
    assert summary['ap'] == pytest.approx(17 / 30)
    with open(out_json) as f:
        data = json.load(f)
    assert data['ap'] == pytest.approx(17 / 30)
    assert data['sensitivity'] == pytest.approx([0.25, 0.25, 0.5, 1, 1, 1, 1, 1])
    assert set(data) >= {'ap', 'fps', 'sensitivity', 'curve', 'n_gt', 'fp_denominator'}
    assert out_png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_mmlesion_frame_and_json_detections(inputs):
    det = inputs['tmp'] / 'det_mm.json'
    save_lh_detections(case.TRACKLETS, det, file_frame='mmlesion')
    summary = main(['--ann', inputs['coco'], '--det', str(det), '--det-frame', 'mmlesion'])
    assert summary['ap'] == pytest.approx(17 / 30)
    # read as the LH frame, volume A's slices shift by its start (5) and x/y by 1: misses
    wrong = main(['--ann', inputs['coco'], '--det', str(det)])
    assert wrong['ap'] < 0.1
    # a z outside the volume's slices is a named error, not a silent miss
    bad = inputs['tmp'] / 'bad.json'
    bad.write_text(json.dumps({case.A: [[[30, [1, 1, 6, 6, 0.5]]]]}))  # relative z > 20
    with pytest.raises(SystemExit):
        main(['--ann', inputs['coco'], '--det', str(bad)])


class _Evil:
    def __reduce__(self):
        return (print, ('pwned',))


def test_refuses_unsafe_pickles_and_bad_files(inputs, capsys):
    evil = inputs['tmp'] / 'evil.pkl'
    with open(evil, 'wb') as f:
        pickle.dump({case.A: [[(10, _Evil())]]}, f)
    with pytest.raises(SystemExit) as e:
        main(['--ann', inputs['coco'], '--det', str(evil)])
    assert e.value.code == 1
    err = capsys.readouterr()
    assert 'pwned' not in err.out and 'error:' in err.err
    missing = ['--ann', str(inputs['tmp'] / 'missing.json'), '--det', inputs['det']]
    with pytest.raises(SystemExit):
        main(missing)
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'missing.json' in err and '--debug' in err
    assert 'Traceback' not in err
    with pytest.raises(FileNotFoundError):  # --debug: the exception itself, traceback and all
        main(missing + ['--debug'])


def test_real_release_ground_truth_as_detections(shared_data_dir, tmp_path):
    """Revised-Test1071.pkl (1071 volumes, 3665 boxes): its own boxes as one-slice tracklets,
    minus those of the first 100 volumes, leave no FP: AP = sensitivity = the kept fraction.
    The same set imported to mmlesion JSON scores the same."""
    from mmlesion.datasets.converters.annotation_release import import_release
    from mmlesion.evaluation import load_annotation_set
    from mmlesion.utils.fileio import atomic_dump_json
    pkl = str(shared_data_dir / 'lesion_harvester' / 'Revised-Test1071.pkl')
    ann = load_annotation_set(pkl)
    assert (len(ann.volumes), ann.num_boxes) == (1071, 3665)
    keys = list(ann.volumes)
    dropped = sum(len(ann.boxes_2d[k]) for k in keys[:100])
    rng = np.random.default_rng(0)
    dets = {k: [[(int(r[0]), [*r[1:], float(rng.uniform(0.5, 1))])] for r in ann.boxes_2d[k]]
            for k in keys[100:]}
    det = tmp_path / 'det.pkl'
    save_lh_detections(dets, det)
    summary = main(['--ann', pkl, '--det', str(det)])
    kept = (3665 - dropped) / 3665
    assert summary['ap'] == pytest.approx(kept)
    assert summary['sensitivity'] == pytest.approx([kept] * 8)
    coco, _ = import_release(pkl)
    js = tmp_path / 'vd_test.json'
    atomic_dump_json(coco, js)
    assert main(['--ann', str(js), '--det', str(det)])['sensitivity'] == \
        pytest.approx(summary['sensitivity'])


def _truth_case(root):
    """Revised-Test ground truth of a synthetic dataset, and tracklets that find exactly its
    lesions of one organ (one single-slice tracklet on each such key slice)."""
    from mmlesion.evaluation import load_annotation_set
    from mmlesion.synthetic.truth import load_truth
    ann_file = str(root / 'ground_truth' / 'Revised-Test.pkl')
    truth = load_truth(root / 'ground_truth' / 'truth.json')
    ann = load_annotation_set(ann_file)
    vols = {v['key']: v for v in truth['volumes']}
    organs = sorted({les['organ'] for k in ann.keys for les in vols[k]['lesions']})
    found = organs[0]
    tracklets = {k: [np.array([[les['key_slice'], *les['box2d'], 0.9]])
                     for les in vols[k]['lesions'] if les['organ'] == found]
                 for k in ann.keys}
    counts = {o: sum(les['organ'] == o for k in ann.keys for les in vols[k]['lesions'])
              for o in organs}
    return ann_file, truth, tracklets, found, counts


def test_sensitivity_by_truth_field(synthetic_converted, tmp_path, capsys):
    ann_file, _, tracklets, found, counts = _truth_case(synthetic_converted)
    det = tmp_path / 'det.pkl'
    save_lh_detections(tracklets, det)  # mmlesion frame in, LH frame on disk
    out = tmp_path / 'p3d.json'
    summary = main(['--ann', ann_file, '--det', str(det), '--json-out', str(out),
                    '--truth', str(synthetic_converted / 'ground_truth' / 'truth.json'),
                    '--by', 'organ'])
    strata = summary['strata']
    assert summary['by'] == 'organ' and set(strata) == set(counts)
    for organ, n in counts.items():
        assert strata[organ]['n_gt'] == n
        want = 1.0 if organ == found else 0.0
        assert strata[organ]['n_hit'] == (n if organ == found else 0)
        assert strata[organ]['sensitivity'] == pytest.approx([want] * 8)
    # the strata add up to the whole: GT-weighted mean = overall sensitivity
    assert summary['sensitivity'][-1] == pytest.approx(counts[found] / sum(counts.values()))
    assert json.loads(out.read_text())['strata'] == strata
    assert 'P3D by organ' in capsys.readouterr().out


def test_by_needs_truth_of_the_same_dataset(synthetic_converted, tmp_path, capsys):
    ann_file, truth, tracklets, _, _ = _truth_case(synthetic_converted)
    det = tmp_path / 'det.pkl'
    save_lh_detections(tracklets, det)
    with pytest.raises(SystemExit) as e:
        main(['--ann', ann_file, '--det', str(det), '--by', 'organ'])
    assert e.value.code == 2
    # a truth.json whose boxes differ (another dataset): refused, naming volume and box
    for vol in truth['volumes']:
        for les in vol['lesions']:
            les['box2d'] = [v + 3 for v in les['box2d']]
    other = tmp_path / 'truth.json'
    other.write_text(json.dumps(truth))
    with pytest.raises(SystemExit) as e:
        main(['--ann', ann_file, '--det', str(det), '--truth', str(other), '--by', 'organ'])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'has no lesion with key slice' in err and str(other) in err


def _attributed_coco(tmp_path):
    """The case's JSON with lesion type and RECIST diameters (0.7 mm/px): long axes 7, 14, 35
    and 21 mm; types lung, liver, lung, unknown.  The tracklets hit all but the last."""
    coco = case.make_coco()
    attrs = {1: (5, [10, 5]), 2: (4, [20, 10]), 4: (5, [50, 20]), 5: (-1, [30, 10])}
    for a in coco['annotations']:
        if a['id'] in attrs:
            a['lesion_type'], a['diameters_px'] = attrs[a['id']]
    path = tmp_path / 'attributed.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_by_size_and_lesion_type_from_the_annotation_json(inputs, tmp_path, capsys):
    ann = _attributed_coco(tmp_path)
    summary = main(['--ann', ann, '--det', inputs['det'], '--by', 'size'])
    got = {k: (v['n_gt'], v['n_hit']) for k, v in summary['strata'].items()}
    assert got == {'<10mm': (1, 1), '10-30mm': (2, 1), '>=30mm': (1, 1)}
    summary = main(['--ann', ann, '--det', inputs['det'], '--by', 'lesion_type'])
    got = {k: (v['n_gt'], v['n_hit']) for k, v in summary['strata'].items()}
    assert got == {'lung': (2, 2), 'liver': (1, 1), 'unknown': (1, 0)}
    assert 'P3D by lesion_type' in capsys.readouterr().out
    # an unknown field names the ones that exist; a vector field is refused, never a crash
    for field, words in (('organ', ['fields that exist', 'size', 'lesion_type', 'source']),
                         ('diameters_px', ['vectors', '--by size'])):
        with pytest.raises(SystemExit) as e:
            main(['--ann', ann, '--det', inputs['det'], '--by', field])
        err = capsys.readouterr().err
        assert e.value.code == 2 and all(w in err for w in words), err
    # a release pickle has boxes only: said, with what to give instead
    with pytest.raises(SystemExit) as e:
        main(['--ann', inputs['lh'], '--det', inputs['det'], '--by', 'size'])
    assert e.value.code == 2 and 'boxes only' in capsys.readouterr().err


def test_vector_truth_field_is_refused_and_size_binned(synthetic_converted, tmp_path, capsys):
    ann_file, _, tracklets, _, _ = _truth_case(synthetic_converted)
    det = tmp_path / 'det.pkl'
    save_lh_detections(tracklets, det)
    truth = str(synthetic_converted / 'ground_truth' / 'truth.json')
    with pytest.raises(SystemExit) as e:
        main(['--ann', ann_file, '--det', str(det), '--truth', truth, '--by', 'diameters_mm'])
    assert e.value.code == 2 and '--by size' in capsys.readouterr().err
    summary = main(['--ann', ann_file, '--det', str(det), '--truth', truth, '--by', 'size'])
    assert set(summary['strata']) <= {'<10mm', '10-30mm', '>=30mm'}
    assert sum(v['n_gt'] for v in summary['strata'].values()) == summary['n_gt']


def test_several_detectors_one_table_and_plots(inputs, tmp_path, capsys):
    other = tmp_path / 'other.pkl'
    save_lh_detections({case.A: case.TRACKLETS[case.A]}, other)
    froc, pr, out = tmp_path / 'froc.png', tmp_path / 'pr.png', tmp_path / 'all.json'
    summary = main(['--ann', inputs['coco'], '--det', f'mine={inputs["det"]}', f'a_only={other}',
                    '--plot', str(froc), '--pr-plot', str(pr), '--json-out', str(out)])
    printed = capsys.readouterr().out
    assert set(summary['detectors']) == {'mine', 'a_only'}
    assert summary['detectors']['mine']['ap'] == pytest.approx(17 / 30)
    assert 'mean = mean sensitivity at 0.125, 0.25, 0.5, 1, 2, 4, 8, 16' in printed
    mine = summary['detectors']['mine']
    assert mine['mean_sensitivity'] == pytest.approx(np.mean(mine['sensitivity']))
    assert f'{mine["mean_sensitivity"]:.4f}' in printed and '| a_only' in printed
    for png in (froc, pr):
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert json.loads(out.read_text())['detectors']['a_only']['n_detections'] == 3


def test_mostly_foreign_volumes_are_an_error_before_any_table(inputs, tmp_path, capsys):
    foreign = tmp_path / 'foreign.pkl'
    tracklets = {f'9000{i:02d}' + case.A[6:]: case.TRACKLETS[case.A] for i in range(3)}
    tracklets[case.B] = case.TRACKLETS[case.B]
    save_lh_detections(tracklets, foreign)
    with pytest.raises(SystemExit) as e:
        main(['--ann', inputs['coco'], '--det', str(foreign)])
    out = capsys.readouterr()
    assert e.value.code == 1 and 'P3D' not in out.out
    assert '9 of 10 tracklets' in out.err and '900000' + case.A[6:] in out.err
    assert case.A in out.err  # examples of both key sets
    summary = main(['--ann', inputs['coco'], '--det', str(foreign), '--allow-partial'])
    assert summary['n_detections'] == 1 and summary['n_ignored_detections'] == 9
