"""End to end on the synthetic dataset: oracle-like proposals (every true lesion plus vessel
look-alikes and random boxes) -> proposal file -> ProposalPatchDataset -> one epoch of a tiny
LPC -> LPCMetric; and tools/lpc_ablation.py's figure and table for the three variants."""
import copy
import json

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.cli.lpc_ablation import ablation_rows, ablation_table, main
from mmlesion.evaluation.functional.proposal_labels import label_proposal_set
from mmlesion.structures import AnnotationSet, Tracklet, VolumeInfo
from mmlesion.structures.proposals import Proposal, ProposalSet
from mmlesion.synthetic.truth import load_truth

SYN = 'configs/lpc/synthetic/lpc-{}_resnet18-tiny_1xb16-5e_synthetic.py'
# CPU-test sizes: 32 px views / 16^3 cubes, narrow trunks, one epoch, no worker processes
TINY = {
    'train_dataloader.batch_size': 8, 'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False, 'test_dataloader.num_workers': 0,
    'test_dataloader.persistent_workers': False, 'train_dataloader.dataset.patch_size': 32,
    'test_dataloader.dataset.patch_size': 32, 'log_level': 'WARNING',
    'default_hooks.checkpoint.interval': 100,
}



pytestmark = pytest.mark.usefixtures('one_torch_thread')

def _tracklet(slices, key, score):
    z = [s['slice'] for s in slices]
    return Tracklet(z, [list(s[key]) + [score] for s in slices])


def oracle_proposals(root, tmp_path, seed=0, max_train_volumes=None):
    """``(train file, eval file)``: proposals of the train/val (at most ``max_train_volumes``)
    and the test volumes, labelled against all lesions of truth.json (complete)."""
    rng = np.random.default_rng(seed)
    truth = load_truth(root / 'ground_truth' / 'truth.json')
    files = {}
    for name, splits in (('train', ('train', 'val')), ('eval', ('test', ))):
        vols, props, gt = {}, [], {}
        for v in truth['volumes']:
            if v['split'] not in splits or (name == 'train' and max_train_volumes is not None
                                            and len(vols) == max_train_volumes):
                continue
            key, (first, last) = v['key'], v['slice_range']
            vols[key] = VolumeInfo(key, v['series'], (first, last), list(v['spacing']),
                                   v['slice_interval'], image_size=tuple(v['image_size']))
            lesions = [les for les in v['lesions'] if les['slices']]
            trks = [_tracklet(les['slices'], 'box', 0.4 + 0.6 * rng.random()) for les in lesions]
            trks += [_tracklet(lk['slices'], 'mask_box', 0.2 + 0.7 * rng.random())
                     for lk in v.get('lookalikes') or [] if lk['slices']]
            for _ in range(2):  # random boxes
                z0 = int(rng.integers(first, last + 1))
                x, y = rng.uniform(10, v['image_size'][0] - 30, 2)
                trks.append(Tracklet([z0], [[x, y, x + 14, y + 12, 0.1 + 0.5 * rng.random()]]))
            trks.sort(key=lambda t: -t.score)
            props += [Proposal(key, i, t) for i, t in enumerate(trks)]
            gt[key] = np.array([[les['key_slice'], *les['box2d']] for les in lesions],
                               dtype=np.float64).reshape(-1, 5)
        pset = ProposalSet(vols, props)
        label_proposal_set(pset, AnnotationSet('truth.json', 'json', copy.deepcopy(vols), gt),
                           'complete')
        files[name] = str(tmp_path / f'proposals_{name}.json')
        pset.save(files[name])
    return files['train'], files['eval']


@pytest.fixture
def oracle(synthetic_converted, tmp_path):
    return oracle_proposals(synthetic_converted, tmp_path)


def test_oracle_proposals_to_trained_axial_lpc(synthetic_converted, oracle, tmp_path):
    train, evaluate = oracle
    counts = ProposalSet.load(train).label_counts()
    assert counts['positive'] > 5 and counts['negative'] > 5 and counts['unknown'] == 0
    cfg = Config.fromfile(SYN.format('axial'))
    cfg.merge_from_dict(TINY)
    cfg.merge_from_dict({'model.backbone.base_channels': 4, 'train_cfg.max_epochs': 1})
    for loader, ann in (('train_dataloader', train), ('test_dataloader', evaluate)):
        ds = cfg[loader].dataset
        ds.ann_file = ann
        ds.data_prefix = dict(img=str(synthetic_converted / 'Images_png'))
        ds.series_info = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()  # one epoch
    metrics = runner.test()
    n_eval = len(ProposalSet.load(evaluate))
    assert metrics['lpc/num_pos'] + metrics['lpc/num_neg'] == n_eval
    for score in ('s_g', 's_c', 's_gc'):
        assert 0.0 <= metrics[f'lpc/{score}_pr_auc'] <= 1.0
        assert 0.0 <= metrics[f'lpc/{score}_roc_auc'] <= 1.0
    # s_g of the oracle lesions (0.4-1.0) mostly beats the look-alikes (0.2-0.9)
    assert metrics['lpc/s_g_roc_auc'] > 0.5


def test_ablation_writes_figure_and_table(synthetic_converted, tmp_path):
    # a few training proposals (2 volumes, 3 iterations a variant): this checks the plumbing
    train, evaluate = oracle_proposals(synthetic_converted, tmp_path, max_train_volumes=2)
    work = tmp_path / 'ablation'
    options = [f'{k}={v}' for k, v in TINY.items()]
    options += ['test_dataloader.dataset.patch_size=16', 'train_dataloader.dataset.patch_size=16']
    out = main(['--train', train, '--eval', evaluate, '--image-root',
                str(synthetic_converted / 'Images_png'), '--work-dir', str(work),
                '--configs', SYN.format('multiview'), SYN.format('axial'), SYN.format('3d'),
                '--names', 'multi-view', 'axial', '3D', '--epochs', '1', '--cfg-options',
                *options, 'model.backbone.base_channels=4'])
    assert (work / 'lpc_ablation.png').stat().st_size > 1000
    text = (work / 'lpc_ablation.txt').read_text()
    assert 's_g (LPG)' in text and 's_g*s_c (3D)' in text and 'recall@0.95' in text
    saved = json.loads((work / 'lpc_ablation.json').read_text())
    assert saved == json.loads(json.dumps(out))
    assert list(saved['rows']) == ['s_g (LPG)', 's_c (multi-view)', 's_g*s_c (multi-view)',
                                   's_c (axial)', 's_g*s_c (axial)', 's_c (3D)', 's_g*s_c (3D)']
    assert saved['counts']['positive'] > 0 and saved['counts']['negative'] > 0
    for variant in ('multi-view', 'axial', '3D'):
        assert (work / variant / 'scores.json').is_file()


def test_table_by_hand_and_mismatched_variants():
    keys = [('a', 0), ('a', 1), ('b', 0)]
    scores = {'v': dict(keys=keys, s_g=np.array([0.9, 0.8, 0.2]), s_c=np.array([0.5, 0.6, 0.9]),
                        label=np.array([1, 1, 0]))}
    rows = ablation_rows(scores)
    text, summary = ablation_table(rows)
    assert summary['s_g (LPG)']['pr_auc'] == pytest.approx(1.0)
    assert summary['s_c (v)']['roc_auc'] == 0.0
    assert summary['s_g*s_c (v)']['recall@0.95'] == pytest.approx(1.0)
    assert text.splitlines()[0].split()[:3] == ['score', 'pr_auc', 'roc_auc']
    other = dict(scores['v'], keys=keys[:2] + [('c', 0)])
    with pytest.raises(ValueError, match='different proposals'):
        ablation_rows({'v': scores['v'], 'w': other})
