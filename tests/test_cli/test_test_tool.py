"""tools/test.py end to end on a tiny MSCN checkpoint saved here: --eval recist2d (key slices) and
--eval p3d (volume scan), their LH-format --out files re-scored offline, checkpoint trust, and a
2-rank torchrun (gloo, CPU) scan identical to the single-process one."""
import json
import os
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_tools_launch import bare_env  # tests/test_cli on sys.path: pytest's prepend mode

import mmlesion  # noqa: F401
from mmdet.registry import MODELS
from mmlesion.cli.eval_p3d import main as eval_p3d_main
from mmlesion.cli.test import build_test_config, main, parse_args
from mmlesion.engine import UntrustedCheckpointError
from mmlesion.evaluation import load_annotation_set
from mmlesion.evaluation.detection_io import load_lh_detections
from mmlesion.evaluation.functional import evaluate_recist_2d
from mmlesion.utils.fileio import atomic_dump_pickle
from mmlesion.utils.safe_pickle import load_pickle

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs', '_base_')

CONFIG = """
_base_ = ['{base}/datasets/deeplesion_9slice.py', '{base}/schedules/schedule_8e.py',
          '{base}/default_runtime.py']
data_root = '{root}/'
model = dict(
    type='CenterNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[50.0], std=[1.0], bgr_to_rgb=False,
                           pad_size_divisor=32),
    backbone=dict(type='DenseNet25D', num_slice_groups=3, in_channels_per_group=3, growth_rate=8,
                  block_config=(1, 1, 1), num_init_features=16, out_indices=(0, 1, 2),
                  fusion_levels=(2, )),
    neck=dict(type='LesionFPNUpsample', in_channels=[24, 20, 18], out_channels=16,
              feat_channels=16),
    bbox_head=dict(type='CenterNetHNSLHead', num_classes=1, in_channels=16, feat_channels=16,
                   loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
                   loss_wh=dict(type='L1Loss', loss_weight=0.1),
                   loss_offset=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(topk=10, local_maximum_kernel=3, max_per_img=10))
test_evaluator = dict(ann_file=data_root + 'annotations/test.json')
# coarse pixels keep the CPU forward passes short
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=(-1024, 3071)),
    dict(type='RescaleToSpacing', target_spacing_mm=1.6, max_size=512),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
]
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root, pipeline=test_pipeline))
default_hooks = dict(logger=dict(interval=1), visualization=dict(draw=False))
log_level = 'WARNING'
"""


@pytest.fixture(scope='module')
def tiny_setup(synthetic_converted, tmp_path_factory):
    root = synthetic_converted
    tmp = tmp_path_factory.mktemp('test_tool')
    cfg_path = tmp / 'tiny_mscn.py'
    cfg_path.write_text(CONFIG.format(base=BASE, root=str(root)))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    model.init_weights()
    ckpt_dir = tmp / 'checkpoints'
    ckpt_dir.mkdir()
    ckpt = ckpt_dir / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)  # weights only
    # 3 completely annotated volumes (43 slices, one of 96 px): uneven over 2 ranks
    small = {}
    for name, keys in (('Revised-Train-VM.pkl', None), ('Revised-Train-VHtest.pkl', None),
                       ('Revised-Valid.pkl', ['900535_03_01_006-018.annot'])):
        data = load_pickle(root / 'ground_truth' / name)
        small.update({k: v for k, v in data.items() if keys is None or k in keys})
    ann = tmp / 'Revised-Small.pkl'
    atomic_dump_pickle(small, ann, protocol=2)
    return dict(root=root, cfg=str(cfg_path), ckpt=str(ckpt), tmp=tmp, ann=str(ann))


P3D_OPTIONS = ['--cfg-options', 'test_cfg.score_thr=0.05', 'test_cfg.batch_size=8']


@pytest.fixture(scope='module')
def p3d_single(tiny_setup):
    """One single-process ``--eval p3d`` run: metrics, LH-format detections and FROC JSON."""
    s = tiny_setup
    out = s['tmp'] / 'single'
    metrics = main([s['cfg'], s['ckpt'], '--eval', 'p3d', '--ann', s['ann'], '--out',
                    str(out / 'det.pkl'), '--work-dir', str(out), *P3D_OPTIONS,
                    f'test_evaluator.json_out={out}/p3d.json'])
    return dict(metrics=metrics, det=out / 'det.pkl', json=out / 'p3d.json')


def test_eval_switch_keeps_settings_and_applies_cli(tiny_setup, tmp_path):
    s = tiny_setup
    args = parse_args([s['cfg'], s['ckpt'], '--eval', 'p3d', 'iou3d', '--ann',
                       str(s['root'] / 'ground_truth' / '3D-Box.pkl'), '--out',
                       str(tmp_path / 'd.pkl'), '--interp', 'clamp', '--work-dir',
                       str(tmp_path), '--cfg-options', 'test_cfg.score_thr=0.05'])
    cfg = build_test_config(args)
    assert cfg.test_cfg.type == 'VolumeScanTestLoop' and cfg.test_cfg.score_thr == 0.05
    assert cfg.test_cfg.ann_file == str(s['root'] / 'ground_truth' / '3D-Box.pkl')
    assert [m.type for m in cfg.test_evaluator] == ['P3DMetric', 'IoU3DMetric']
    assert all(m.interp == 'clamp' and m.ann_file is None for m in cfg.test_evaluator)
    assert cfg.test_evaluator[0].det_out == str(tmp_path / 'd.pkl')
    assert cfg.load_from == s['ckpt']
    assert cfg.test_cfg.get('strict') is None and cfg.test_cfg.get('resume') is None
    cfg = build_test_config(parse_args([s['cfg'], s['ckpt'], '--eval', 'p3d', '--strict',
                                        '--no-resume']))
    assert cfg.test_cfg.strict is True and cfg.test_cfg.resume is False
    assert all(cfg.test_cfg.get(k) is None for k in ('amp_dtype', 'channels_last',
                                                     'cross_volume'))
    cfg = build_test_config(parse_args([s['cfg'], s['ckpt'], '--eval', 'p3d', '--amp-dtype',
                                        'bf16', '--channels-last', '--cross-volume']))
    assert (cfg.test_cfg.amp_dtype, cfg.test_cfg.channels_last, cfg.test_cfg.cross_volume) == \
        ('bf16', True, True)
    with pytest.raises(SystemExit, match='give --eval p3d'):
        build_test_config(parse_args([s['cfg'], s['ckpt'], '--eval', 'recist2d',
                                      '--cross-volume']))
    with pytest.raises(SystemExit):
        parse_args([s['cfg'], s['ckpt'], '--eval', 'p3d', 'recist2d'])
    with pytest.raises(SystemExit):
        parse_args([s['cfg'], s['ckpt'], '--out', 'x.txt'])
    args = parse_args([s['cfg'], s['ckpt'], '--eval', 'recist2d', '--ann',
                       str(s['root'] / 'ground_truth' / 'Revised-Test.pkl')])
    with pytest.raises(SystemExit, match='must be mmlesion JSON'):
        build_test_config(args)
    # a config inheriting the evaluation piece keeps its scan settings under --eval p3d
    piece = tmp_path / 'with_piece.py'
    piece.write_text(f"_base_ = ['{s['cfg']}', '{BASE}/evaluation/p3d_volume_scan.py']\n"
                     "test_cfg = {{_base_.volume_scan_test_cfg}}\n"
                     "test_evaluator = {{_base_.p3d_test_evaluator}}\n")
    cfg = build_test_config(parse_args([str(piece), s['ckpt']]))
    assert cfg.test_evaluator.type == 'P3DMetric' and 'metric' not in cfg.test_evaluator
    cfg = build_test_config(parse_args([str(piece), s['ckpt'], '--eval', 'p3d']))
    assert (cfg.test_cfg.type, cfg.test_cfg.num_workers, cfg.test_cfg.score_thr) == \
        ('VolumeScanTestLoop', 2, 0.1)
    assert cfg.test_evaluator.type == 'P3DMetric' and cfg.test_evaluator.iou_thr == 0.5
    cfg = build_test_config(parse_args([str(piece), s['ckpt'], '--eval', 'recist2d']))
    assert cfg.test_cfg.type == 'TestLoop' and cfg.test_evaluator.type == 'Recist2DMetric'


def test_recist2d_end_to_end(tiny_setup, tmp_path):
    s = tiny_setup
    out = tmp_path / 'det2d.pkl'
    metrics = main([s['cfg'], s['ckpt'], '--eval', 'recist2d', '--out', str(out), '--show-dir',
                    str(tmp_path / 'show'), '--work-dir', str(tmp_path / 'work')])
    expected_keys = {'recist2d/AP'} | {f'recist2d/sens@{t:g}' for t in (0.5, 1, 2, 4, 8, 16)}
    expected_keys |= {'recist2d/iobb_' + k.split('/')[1] for k in expected_keys}
    assert expected_keys <= set(metrics)
    # the LH-format --out holds every key-slice detection; re-scoring it reproduces the metric
    ann = load_annotation_set(str(s['root'] / 'annotations' / 'test.json'))
    dets = load_lh_detections(out)
    by_img = {}
    for img_id, (vid, z, _) in ann.images.items():
        by_img[img_id] = np.array([b for trk in dets.get(vid, []) for zz, b in trk if zz == z])
    assert sum(len(v) for v in by_img.values()) == 10 * len(ann.images)  # topk 10 per image
    ref = evaluate_recist_2d({i: v[2] for i, v in ann.images.items()}, by_img)
    assert metrics['recist2d/AP'] == pytest.approx(ref.ap, abs=1e-6)
    for t, sens in zip(ref.fp_points, ref.sensitivity):
        assert metrics[f'recist2d/sens@{t:g}'] == pytest.approx(sens, abs=1e-6)
    shown = sorted(os.listdir(tmp_path / 'show'))
    assert len(shown) == len(ann.images) and all(p.endswith('.png') for p in shown)


def test_p3d_end_to_end_and_offline_rescoring(tiny_setup, p3d_single):
    s, metrics = tiny_setup, p3d_single['metrics']
    keys = ['AP'] + [f'sens@{t:g}' for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16)]
    assert set(metrics) == {f'p3d/{k}' for k in keys}
    dets = load_lh_detections(p3d_single['det'])
    assert sorted(dets) == sorted(load_annotation_set(s['ann']).volumes)
    assert sum(len(v) for v in dets.values()) > 0
    summary = eval_p3d_main(['--ann', s['ann'], '--det', str(p3d_single['det'])])
    assert summary['ap'] == pytest.approx(metrics['p3d/AP'], abs=1e-9)
    assert summary['sensitivity'] == pytest.approx(
        [metrics[f'p3d/sens@{t:g}'] for t in summary['fps']], abs=1e-9)
    with open(p3d_single['json']) as f:
        assert json.load(f)['ap'] == pytest.approx(metrics['p3d/AP'], abs=1e-9)


def test_untrusted_training_checkpoint_is_refused(tiny_setup, tmp_path, capsys):
    s = tiny_setup
    state = torch.load(s['ckpt'], weights_only=True)
    risky = tmp_path / 'elsewhere' / 'epoch_1.pth'
    risky.parent.mkdir()
    # an mmengine training checkpoint holds numpy objects: not weights-only loadable
    torch.save({'state_dict': state['state_dict'], 'meta': {'seed': np.int64(0)},
                'message_hub': {'x': np.zeros(2)}}, risky)
    argv = [s['cfg'], str(risky), '--eval', 'p3d', '--ann',
            str(s['root'] / 'ground_truth' / 'Revised-Train-VHtest.pkl'),
            '--work-dir', str(tmp_path / 'work')]
    # the short message leads with what to run; the traceback only with --debug
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f'error: {risky} is a training checkpoint')
    assert 'tools/test.py ... --trust-checkpoint' in err
    assert f'tools/publish_checkpoint.py {risky} weights.pth' in err
    assert 'Traceback' not in err and len(err.splitlines()) <= 6
    with pytest.raises(UntrustedCheckpointError, match='--trust-checkpoint'):
        main(argv + ['--debug'])
    metrics = main(argv + ['--trust-checkpoint'])
    assert 0.0 <= metrics['p3d/AP'] <= 1.0


def test_quick_looks_and_quiet_console(tiny_setup, tmp_path, capsys):
    s = tiny_setup
    keys = list(load_annotation_set(s['ann']).volumes)
    base = [s['cfg'], s['ckpt'], '--eval', 'p3d', '--ann', s['ann']]
    cfg = build_test_config(parse_args(base + ['--max-volumes', '2']))
    assert cfg.test_cfg.volumes == keys[:2]
    cfg = build_test_config(parse_args(base + ['--volumes', keys[2] + '.annot']))
    assert cfg.test_cfg.volumes == [keys[2]]
    from mmlesion.cli.errors import CLIError
    with pytest.raises(CLIError, match='not in the annotation file'):
        build_test_config(parse_args(base + ['--volumes', '900999_01_01_001-003']))
    with pytest.raises(SystemExit, match='volume scan'):
        build_test_config(parse_args([s['cfg'], s['ckpt'], '--eval', 'recist2d',
                                      '--max-volumes', '1']))
    with pytest.raises(SystemExit):
        parse_args(base + ['--max-volumes', '1', '--volumes', keys[0]])
    # one volume; the config dump goes to the log file, not the console, unless --verbose
    opts = [*P3D_OPTIONS, 'log_level=INFO']
    capsys.readouterr()
    for verbose in (False, True):
        work = tmp_path / f'work_{verbose}'
        metrics = main(base + ['--max-volumes', '1', '--work-dir', str(work)]
                       + ['--verbose'] * verbose + opts
                       + [f'experiment_name=quick_{verbose}'])  # two runs in one second
        assert 0.0 <= metrics['p3d/AP'] <= 1.0
        out = capsys.readouterr()
        (log, ) = [p for p in work.glob('*/*.log')]
        text = log.read_text()
        assert 'Config:' in text and 'System environment' in text
        assert ('Config:' in out.out + out.err) == verbose
        assert ('environment and config: ' in out.out + out.err) != verbose


def test_missing_images_and_spacing_lead_with_the_fix(tiny_setup, tmp_path, capsys):
    s = tiny_setup
    base = [s['cfg'], s['ckpt'], '--eval', 'p3d', '--work-dir', str(tmp_path / 'work')]
    # no image folder: said before anything is built
    argv = base + ['--cfg-options', f'test_dataloader.dataset.data_root={tmp_path}/nowhere/']
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith('error: the image folder')
    assert 'nowhere/Images_png' in err and 'Traceback' not in err
    assert '--cfg-options test_dataloader.dataset.data_root=' in err
    from mmlesion.cli.errors import CLIError
    with pytest.raises(CLIError):
        main(argv + ['--debug'])
    # a release pickle of volumes that neither DL_info.csv nor the dataset JSON describes
    ann = tmp_path / 'Revised-Unknown.pkl'
    atomic_dump_pickle({'900999_01_01_001-003.annot': {1: [[10, 10, 20, 20, 1, 1]]}}, ann,
                       protocol=2)
    with pytest.raises(SystemExit):
        main(base + ['--ann', str(ann)])
    err = capsys.readouterr().err
    assert err.startswith("error: no pixel spacing for 1 volume(s)")
    assert '--cfg-options test_cfg.series_info=DeepLesion/DL_info.csv' in err
    assert 'Traceback' not in err


def test_two_cpu_ranks_scan_like_one(tiny_setup, p3d_single, tmp_path):
    s = tiny_setup
    two = tmp_path / 'two'
    # as typed in a fresh shell: no venv on PATH, $PYTHON unset (the launcher finds .venv)
    env = bare_env(CUDA_VISIBLE_DEVICES='', PORT=str(29600 + os.getpid() % 1000))
    proc = subprocess.run(
        ['tools/dist_test.sh', s['cfg'], s['ckpt'], '2', '--eval', 'p3d', '--ann',
         s['ann'], '--out', str(two / 'det.pkl'), '--work-dir', str(two), *P3D_OPTIONS,
         f'test_evaluator.json_out={two}/p3d.json', 'log_level=INFO'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert 'rank 0/2 scans 2' in proc.stdout + proc.stderr  # volumes 0 and 2 of 3
    with open(p3d_single['json']) as f1, open(two / 'p3d.json') as f2:
        r1, r2 = json.load(f1), json.load(f2)
    assert r2['fp_denominator'] == r1['fp_denominator'] == 3
    assert r2['ap'] == pytest.approx(r1['ap'], abs=1e-9)
    assert r2['sensitivity'] == pytest.approx(r1['sensitivity'], abs=1e-9)
    assert r2['n_detections'] == r1['n_detections'] > 0
    d1, d2 = load_lh_detections(p3d_single['det']), load_lh_detections(two / 'det.pkl')
    assert sorted(d1) == sorted(d2)
    for key in d1:
        assert len(d1[key]) == len(d2[key])
        for t1, t2 in zip(d1[key], d2[key]):
            assert [z for z, _ in t1] == [z for z, _ in t2]
            np.testing.assert_allclose([b for _, b in t1], [b for _, b in t2], atol=1e-5)
    assert not any(n.startswith('.collect') for n in os.listdir(two))

    # distributed resume: with one finished volume lost (as by a kill), a rerun of the two ranks
    # scans that volume alone and writes the same detections
    records = [os.path.join(d, f) for d, _, fs in os.walk(two / 'volume_scan') for f in fs]
    assert len(records) == 3
    os.remove(sorted(records)[1])
    again = subprocess.run(
        ['tools/dist_test.sh', s['cfg'], s['ckpt'], '2', '--eval', 'p3d', '--ann',
         s['ann'], '--out', str(two / 'det2.pkl'), '--work-dir', str(two), *P3D_OPTIONS,
         'log_level=INFO'], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    assert 'resumes 2 of 2 volumes' in again.stdout + again.stderr  # rank 0: both finished
    assert (two / 'det2.pkl').read_bytes() == (two / 'det.pkl').read_bytes()
