"""``make demo`` (tools/demo.py): anatomy choice, and every stage end to end on a tiny dataset."""
import json
import os

from mmlesion.cli.demo import main, resolve_anatomy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_auto_anatomy_falls_back_to_phantoms_without_the_real_ct(tmp_path, capsys):
    assert resolve_anatomy('auto', str(tmp_path)) == 'phantom'
    out = capsys.readouterr().out
    assert 'using phantom anatomy' in out
    # ... and says how to fetch them
    assert 'tools/fetch_real_ct.py (downloads' in out and 'tools/fetch_real_ct.py --from DIR' in out
    assert resolve_anatomy('phantom', None) == 'phantom'
    assert resolve_anatomy('real', str(tmp_path)) == 'real'  # generation then names the problem


def test_auto_anatomy_is_real_with_the_shared_data(real_ct_dir):
    assert resolve_anatomy('auto', real_ct_dir) == 'real'


def test_demo_end_to_end_on_real_anatomy(real_ct_dir, tmp_path, capsys):
    work = tmp_path / 'demo'
    argv = ['--work-dir', str(work), '--volumes', '8', '--image-size', '128', '--epochs', '1',
            '--real-ct-dir', real_ct_dir, '--montage-samples', '2', '--harvest-rounds', '1']
    results = main(argv)
    out = capsys.readouterr().out
    assert results['generate']['anatomy'] == 'real'
    for name in ('montage_9slice.png', 'loss_curves.png', 'froc_p3d_test.png', 'p3d_test.json',
                 'detections_test_lh.pkl', 'mscn_hnsl/epoch_1.pth'):
        assert os.path.isfile(work / name), name
    # the P3D summary splits real and synthetic lesions of the held-out patient (lung1)
    with open(work / 'p3d_test.json') as f:
        p3d = json.load(f)
    assert p3d['by'] == 'origin' and set(p3d['strata']) <= {'real', 'synthetic'}
    truth = json.loads((work / 'data' / 'ground_truth' / 'truth.json').read_text())
    n_real = sum(les['origin'] == 'real' for v in truth['volumes'] if v['split'] == 'test'
                 for les in v['lesions'])
    assert p3d['strata'].get('real', {}).get('n_gt', 0) == n_real
    assert sum(s['n_gt'] for s in p3d['strata'].values()) == p3d['n_gt']
    if n_real:
        assert 'real lesions (the held-out patient' in out
    assert results['evaluate']['recist2d_val']  # the validation metric ran
    # the LPG trained on round 1's set (R and the V_M marks) and the harvest reused it
    assert (work / 'data' / 'annotations' / 'train_r_vm.json').is_file()
    report = results['harvest'][0]
    assert report['round'] == 1 and report['steps']['lpg']['reused'] == str(
        work / 'mscn_hnsl' / 'epoch_1.pth')
    for name in ('harvested_positives.pkl', 'hard_negatives.pkl', 'next_train.json',
                 'tables.txt', 'table1_pr.png', 'report.json'):
        assert (work / 'harvest' / 'round_1' / name).is_file(), name
    assert 'Table I' in out and set(results['seconds']) >= {'train', 'evaluate', 'harvest'}
    # ... in stage 5 only: the training run does not validate the same checkpoint first
    scalars = list((work / 'mscn_hnsl').glob('*/vis_data/scalars.json'))
    assert scalars and 'recist2d' not in scalars[0].read_text()
    # a re-run keeps the data and the checkpoint
    main(argv)
    out = capsys.readouterr().out
    assert 'already holds this dataset; kept' in out and 'exists; kept' in out
    assert 'round 1 is finished' in out


def test_montage_boxes_are_resized_with_the_image(synthetic_converted):
    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    from mmlesion.cli.demo import DEMO_CONFIG, montage_pipeline
    cfg = Config.fromfile(os.path.join(REPO, DEMO_CONFIG))
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = montage_pipeline(test_pipeline)
    assert [t['type'] for t in pipeline] == [
        'LoadMultiSliceFromFile', 'LoadLesionAnnotations', 'RescaleToSpacing', 'PackLesionInputs']
    init_default_scope('mmdet')
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(data_root=str(synthetic_converted) + '/', pipeline=pipeline)
    ds = DATASETS.build(ds_cfg)
    sample = ds[0]
    info = ds.get_data_info(0)
    scale = np.asarray(sample['data_samples'].scale_factor)
    assert not np.allclose(scale, 1.0)  # 128 px phantoms at < 1 mm/px are resized to 1.2 mm/px
    boxes = sample['data_samples'].gt_instances.bboxes
    boxes = boxes.tensor.numpy() if hasattr(boxes, 'tensor') else np.asarray(boxes)
    original = np.array([x['bbox'] for x in info['instances']], dtype=np.float32)
    np.testing.assert_allclose(boxes, original * np.tile(scale, 2), rtol=1e-4, atol=1e-3)
