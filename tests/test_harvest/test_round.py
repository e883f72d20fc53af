"""Harvest rounds end to end on the small synthetic dataset (tiny LPG and LPC, one epoch each):
outputs, resume after an interruption inside every step, finished rounds left alone, and bad
configs refused before any training."""
import json
import os
import os.path as osp
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import mmlesion  # noqa: F401
from mmlesion.cli.harvest_round import main as harvest_main
from mmlesion.harvest import STEPS, HarvestRunner, RoundFrozenError
from mmlesion.structures.proposals import ProposalSet

REPO = Path(__file__).resolve().parents[2]
LPG_BASE = REPO / 'configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py'
LPC_BASE = REPO / 'configs/lpc/synthetic/lpc-multiview_resnet18-tiny_1xb16-5e_synthetic.py'
# the files whose bytes a resumed round must reproduce (checkpoints hold run timestamps: their
# weights are compared instead)
DATA_OUTPUTS = ('lpg_train.json', 'proposals.json', 'proposals_scored.json',
                'harvested_positives.pkl', 'hard_negatives.pkl', 'harvested_positives.json',
                'hard_negatives.json', 'recist_3d_boxes.pkl', 'next_train.json', 'tables.txt')

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _write_configs(root: Path, where: Path, tiny_detector_cfg) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    lpg = where / 'tiny_lpg.py'
    lpg.write_text(
        f"_base_ = [{str(LPG_BASE)!r}]\n"
        f"model = {tiny_detector_cfg!r}\n"
        "model['_delete_'] = True\n"
        "model['test_cfg'] = dict(topk=20, local_maximum_kernel=3, max_per_img=20)\n"
        "train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)\n"
        "max_epochs = 1\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n"
        "param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, "
        "end=1)]\n"
        "custom_hooks = []\n"
        "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1), "
        "logger=dict(interval=50))\n"
        "log_level = 'WARNING'\n")
    lpc = where / 'tiny_lpc.py'
    lpc.write_text(
        f"_base_ = [{str(LPC_BASE)!r}]\n"
        "model = dict(backbone=dict(base_channels=4))\n"
        "train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, "
        "dataset=dict(patch_size=16))\n"
        "test_dataloader = dict(num_workers=0, persistent_workers=False, "
        "dataset=dict(patch_size=16))\n"
        "max_epochs = 1\n"
        "train_cfg = dict(max_epochs=1)\n"
        "param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, "
        "end=1)]\n"
        "default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=50))\n"
        "log_level = 'WARNING'\n")
    harvest = where / 'harvest.py'
    gt = root / 'ground_truth'
    harvest.write_text(
        'harvest = ' + repr(dict(
            image_root=str(root / 'Images_png'), series_info=str(root / 'DL_info.csv'),
            train_ann=str(root / 'annotations' / 'train.json'),
            v_m_ann=str(gt / 'Revised-Train-VM.pkl'),
            v_h_test_ann=str(gt / 'Revised-Train-VHtest.pkl'),
            test_ann=str(gt / 'Revised-Test.pkl'), rounds=2,
            # a one-epoch LPG scores low: a low t_G still gives proposals to work on
            score_thr=0.02,
            lpg=dict(config=str(lpg), cfg_options=dict(data_root=str(root) + '/'),
                     finetune_epochs=1),
            lpc=dict(config=str(lpc)),
            scan=dict(device='cpu', batch_size=4, num_workers=0))) + '\n')
    return harvest


def _digest(rd: str) -> dict:
    out = {}
    for name in DATA_OUTPUTS:
        with open(osp.join(rd, name), 'rb') as f:
            out[name] = f.read()
    for ckpt in ('lpg.pth', 'lpc.pth'):
        state = torch.load(osp.join(rd, ckpt), map_location='cpu', weights_only=False)
        out[ckpt] = {k: v.clone() for k, v in state['state_dict'].items()}
    return out


def _same(a: dict, b: dict) -> None:
    for name in DATA_OUTPUTS:
        assert a[name] == b[name], name
    for ckpt in ('lpg.pth', 'lpc.pth'):
        assert a[ckpt].keys() == b[ckpt].keys()
        for k in a[ckpt]:
            assert torch.equal(a[ckpt][k], b[ckpt][k]), (ckpt, k)


@pytest.fixture(scope='module')
def uninterrupted(synthetic_converted, tmp_path_factory, make_tiny_detector):
    """Round 1 run straight through in ``<tmp>/harvest``; its outputs, then the folder is left
    for the tests (each restores it as it needs)."""
    base = tmp_path_factory.mktemp('harvest_round')
    cfg_path = _write_configs(synthetic_converted, base / 'configs', make_tiny_detector())
    work = base / 'harvest'
    # one thread like the tests (module fixtures are set up before one_torch_thread): the
    # resumed runs must compute the same floats
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reports = harvest_main([str(cfg_path), '--work-dir', str(work), '--rounds', '1'])
    finally:
        torch.set_num_threads(threads)
    rd = str(work / 'round_1')
    return dict(cfg=cfg_path, work=work, report=reports[0], digest=_digest(rd),
                files=sorted(os.listdir(rd)))


def test_round_writes_every_output(uninterrupted):
    rd = uninterrupted['work'] / 'round_1'
    for name in DATA_OUTPUTS + ('lpg.pth', 'lpc.pth', 'report.json', 'table1_pr.png',
                                'state.json'):
        assert (rd / name).is_file(), name
    report = uninterrupted['report']
    assert report['round'] == 1
    assert report['sets'] == dict(report['sets'], V_M=1, V_H=3, V_H_test=1)
    rows = report['table1']['rows']
    assert list(rows)[:3] == ['R', 'R ∪ P_H,1', 'R ∪ P_H,1^+']
    for name, row in rows.items():
        if name != 'R':
            assert set(row) == {'recall@0.8', 'recall@0.85', 'recall@0.9', 'recall@0.95'}
            # R alone always qualifies: harvesting never lowers recall below R's
            assert min(row.values()) >= rows['R']['recall'] - 1e-12
    t2 = report['table2']['rounds'][0]
    assert len(t2['sensitivity']) == 7 and 0.0 <= t2['ap'] <= 1.0
    scored = ProposalSet.load(rd / 'proposals_scored.json')
    assert len(scored) > 0 and all(p.s_c is not None and 0 <= p.s_c <= 1 for p in scored)
    assert set(scored.volumes) == set(ProposalSet.load(rd / 'proposals.json').volumes)
    # the harvested positives carry s_g * s_c as their tracklet score (LH detection format)
    from mmlesion.evaluation.detection_io import load_lh_detections
    harvested = load_lh_detections(str(rd / 'harvested_positives.pkl'))
    sel = report['steps']['select']
    assert sum(len(v) for v in harvested.values()) == sel['harvested']
    if sel['harvested']:
        scores = sorted(max(b[4] for _, b in t) for v in harvested.values() for t in v)
        assert scores[0] >= sel['threshold'] - 1e-9
    nxt = json.loads((rd / 'next_train.json').read_text())
    pools = {a.get('harvest_pool') for a in nxt['annotations']}
    assert pools & {'P_M^R', 'P_M^-', 'P_H^R', 'P_H^-'}
    assert all(a['hard_negative'] == (a.get('harvest_pool') in ('P_M^-', 'P_H^-'))
               for a in nxt['annotations'] if a.get('harvest_pool'))
    assert 'Table I' in (rd / 'tables.txt').read_text()


def test_resume_after_an_interruption_in_every_step(uninterrupted, monkeypatch):
    work, rd = uninterrupted['work'], uninterrupted['work'] / 'round_1'
    shutil.rmtree(work)
    cfg = Config.fromfile(str(uninterrupted['cfg']))

    class Stop(Exception):
        pass

    for step in STEPS:
        def stop(i, step=step):
            raise Stop(step)

        with pytest.raises(Stop):
            HarvestRunner(cfg, str(work), hooks={step: stop}).run(rounds=1)
        state = json.loads((rd / 'state.json').read_text()) if (rd / 'state.json').exists() \
            else dict(steps={})
        assert list(state['steps']) == list(STEPS[:STEPS.index(step)])
    # a scan killed after its first volume: the records of the scanned volumes are reused
    from mmlesion.apis import scan_records

    shutil.rmtree(work)
    real_save = scan_records.ScanRecords.save
    saved = []

    def save_then_die(self, pred):
        real_save(self, pred)
        saved.append(pred.volume.key)
        raise Stop('scan')

    monkeypatch.setattr(scan_records.ScanRecords, 'save', save_then_die)
    with pytest.raises(Stop):
        HarvestRunner(cfg, str(work)).run(rounds=1)
    monkeypatch.setattr(scan_records.ScanRecords, 'save', real_save)
    assert len(saved) == 1 and (rd / 'scan_records').is_dir()
    HarvestRunner(cfg, str(work)).run(rounds=1)
    _same(_digest(str(rd)), uninterrupted['digest'])


def test_finished_round_is_left_alone(uninterrupted, capsys):
    work, rd = uninterrupted['work'], uninterrupted['work'] / 'round_1'
    if not (rd / 'report.json').exists():
        pytest.skip('needs the finished round of the resume test')
    before = {n: (rd / n).read_bytes() for n in DATA_OUTPUTS + ('state.json', 'report.json')}
    mtimes = {n: os.stat(rd / n).st_mtime_ns for n in before}
    harvest_main([str(uninterrupted['cfg']), '--work-dir', str(work), '--round', '1'])
    assert 'nothing to do' in capsys.readouterr().out
    assert {n: (rd / n).read_bytes() for n in before} == before
    assert {n: os.stat(rd / n).st_mtime_ns for n in before} == mtimes
    # altered outputs of a finished round are an error, never silently redone
    orig = (rd / 'hard_negatives.json').read_bytes()
    (rd / 'hard_negatives.json').write_text('{}')
    cfg = Config.fromfile(str(uninterrupted['cfg']))
    with pytest.raises(RoundFrozenError, match='outputs of its'):
        HarvestRunner(cfg, str(work)).run(only_round=1)
    (rd / 'hard_negatives.json').write_bytes(orig)


def test_second_round_finetunes_and_pools_table1(uninterrupted):
    work = uninterrupted['work']
    if not (work / 'round_1' / 'report.json').exists():
        pytest.skip('needs the finished round 1')
    cfg = Config.fromfile(str(uninterrupted['cfg']))
    report = HarvestRunner(cfg, str(work)).run_round(2)
    rd2 = work / 'round_2'
    assert report['steps']['lpg']['finetuned_from'] == str(work / 'round_1' / 'lpg.pth')
    assert report['steps']['lpc']['finetuned_from'] == str(work / 'round_1' / 'lpc.pth')
    assert json.loads((rd2 / 'lpg_train.json').read_text()) == json.loads(
        (work / 'round_1' / 'next_train.json').read_text())
    assert 'R ∪ P_H,1^+ ∪ P_H,2^+' in report['table1']['rows']
    assert len(report['table2']['rounds']) == 2
    # round 1 cannot be redone now that round 2 exists
    state = json.loads((work / 'round_1' / 'state.json').read_text())
    assert 'report' in state['steps']


def test_bad_configs_fail_before_training(synthetic_converted, tmp_path, capsys,
                                          tiny_detector_cfg):
    cfg_path = _write_configs(synthetic_converted, tmp_path / 'configs', tiny_detector_cfg)
    text = cfg_path.read_text()
    missing = tmp_path / 'missing.py'
    missing.write_text(text.replace('Revised-Train-VM.pkl', 'Revised-Nope.pkl'))
    with pytest.raises(SystemExit):
        harvest_main([str(missing), '--work-dir', str(tmp_path / 'w1')])
    assert 'Revised-Nope.pkl' in capsys.readouterr().err
    assert not (tmp_path / 'w1').exists()
    # a V_M volume that is not a training sub-volume of the data
    from mmlesion.utils.fileio import atomic_dump_pickle
    from mmlesion.utils.safe_pickle import load_pickle
    vm = load_pickle(str(synthetic_converted / 'ground_truth' / 'Revised-Train-VM.pkl'))
    vm['000777_01_01_001-005.annot'] = {0: [[1, 1, 9, 9, 0, 0]]}
    bad = tmp_path / 'VM-bad.pkl'
    atomic_dump_pickle(vm, bad, protocol=2)
    odd = tmp_path / 'odd.py'
    odd.write_text(text.replace(str(synthetic_converted / 'ground_truth' /
                                    'Revised-Train-VM.pkl'), str(bad)))
    with pytest.raises(SystemExit):
        harvest_main([str(odd), '--work-dir', str(tmp_path / 'w2')])
    err = capsys.readouterr().err
    assert '000777_01_01_001-005' in err and 'not training' in err
    assert not (tmp_path / 'w2').exists()


def test_scan_gpu_settings_reach_the_predictor(synthetic_converted, tmp_path, monkeypatch,
                                               make_tiny_detector):
    """The harvest's ``scan`` dict passes the GPU speed settings on to the scan and records
    them in the scan step's settings (a change rescans); absent keys change nothing."""
    import mmlesion.apis.inference as inference
    import mmlesion.apis.scan_records as scan_records
    cfg_path = _write_configs(synthetic_converted, tmp_path / 'configs', make_tiny_detector())
    cfg = Config.fromfile(str(cfg_path))
    plain = HarvestRunner(cfg, str(tmp_path / 'plain'))
    assert not {'amp_dtype', 'channels_last', 'cross_volume'} & set(
        plain._step_settings('scan', 1))
    cfg.harvest.scan.update(amp_dtype='bf16', channels_last=True, cross_volume=True)
    runner = HarvestRunner(cfg, str(tmp_path / 'gpu'))
    settings = runner._step_settings('scan', 1)
    assert (settings['amp_dtype'], settings['channels_last'], settings['cross_volume']) == \
        ('bf16', True, True)
    seen = {}

    def fake_predict_volumes(model, volumes, image_root, **kwargs):
        seen.update(kwargs)
        return iter(())

    monkeypatch.setattr(inference, 'predict_volumes', fake_predict_volumes)
    monkeypatch.setattr(scan_records, 'scan_fingerprint', lambda *a, **k: 'fp')
    monkeypatch.setattr(inference, 'VolumePredictor', lambda model, **kw: seen.update(
        predictor=kw))
    model = type('Model', (), {'cfg': Config(dict(model=dict()))})()
    runner._scan(model, [], str(tmp_path / 'records'), 'test scan')
    for kw in (seen, seen['predictor']):
        assert (kw['amp_dtype'], kw['channels_last'], kw['cross_volume']) == ('bf16', True, True)
        assert kw['batch_size'] == 4 and 'pin_memory' not in kw
