"""Training end to end: the loss falls on a fixed batch; 2 CPU ranks (gloo) train and resume."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmdet.registry import DATASETS, MODELS
from mmlesion.cli.demo import data_cfg_options

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'synthetic',
                  'mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py')


def _cfg(data_root):
    cfg = Config.fromfile(CONFIG)
    opts = {}
    for item in data_cfg_options(str(data_root)):
        k, v = item.split('=', 1)
        opts[k] = v
    cfg.merge_from_dict(opts)
    return cfg


def test_twenty_iterations_reduce_loss_on_a_fixed_batch(synthetic_converted):
    torch.manual_seed(0)
    cfg = _cfg(synthetic_converted)
    init_default_scope('mmdet')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.pipeline = [t for t in ds_cfg.pipeline if t['type'] != 'RandomFlip']
    dataset = DATASETS.build(ds_cfg)
    batch = [dataset[i] for i in range(4)]
    data = dict(inputs=[b['inputs'] for b in batch],
                data_samples=[b['data_samples'] for b in batch])
    model = MODELS.build(cfg.model)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        packed = model.data_preprocessor(data, training=True)
        loss_dict = model(**packed, mode='loss')
        loss = sum(v for v in loss_dict.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert all(map(lambda x: x == x, losses))  # no NaN
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses


def test_missing_image_folder_leads_with_the_fix(tmp_path, capsys):
    from mmlesion.cli.errors import CLIError
    from mmlesion.cli.train import main as train_main
    argv = [CONFIG, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
            f'train_dataloader.dataset.data_root={tmp_path}/nowhere/']
    with pytest.raises(SystemExit) as e:
        train_main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith('error: the image folder')
    assert 'tools/train.py ... --cfg-options train_dataloader.dataset.data_root=' in err
    assert 'Traceback' not in err
    with pytest.raises(CLIError):
        train_main(argv + ['--debug'])


def _run(cmd, env):
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_dist_train_two_cpu_ranks_then_resume(synthetic_converted, tmp_path):
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='',
               PORT=str(29500 + os.getpid() % 1000))
    opts = data_cfg_options(str(synthetic_converted)) + [
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']
    out = _run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work_dir),
                '--cfg-options', 'train_cfg.max_epochs=1', *opts], env)
    # mmengine logs the world size as 'GPU number' whatever the device
    assert 'Distributed launcher: pytorch' in out
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out
    assert osp.exists(work_dir / 'epoch_1.pth')
    ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] > 0
    first_iters = ckpt['meta']['iter']

    # resume in the same work dir (trusted) under torch's weights-only default
    out = _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir), '--resume',
                '--cfg-options', 'train_cfg.max_epochs=2', *opts], env)
    assert 'resumed epoch: 1' in out
    ckpt2 = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
    assert ckpt2['meta']['epoch'] == 2
    assert ckpt2['meta']['iter'] > first_iters
    assert glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))


@pytest.mark.slow
def test_seeded_training_is_reproducible(synthetic_converted, tmp_path):
    """The synthetic config's ``randomness.seed``: the same data give the same model, data
    worker augmentation (scale jitter, flips, lesion crops) included."""
    from mmlesion.cli.train import main as train_main
    cfg = Config.fromfile(CONFIG)
    assert cfg.randomness.seed == 0
    opts = data_cfg_options(str(synthetic_converted)) + [
        'train_cfg.max_epochs=2', 'param_scheduler.1.end=2', 'train_cfg.val_interval=100',
        'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=2']
    states = []
    for run in ('a', 'b'):
        runner = train_main([CONFIG, '--work-dir', str(tmp_path / run), '--cfg-options', *opts])
        states.append({k: v.clone() for k, v in runner.model.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    # the checkpoints the training saved are recorded as one's own: they load from elsewhere
    from mmlesion.engine import OWN_CHECKPOINTS, load_local_checkpoint
    saved = tmp_path / 'a' / 'epoch_2.pth'
    assert OWN_CHECKPOINTS.contains(str(saved))
    moved = tmp_path / 'moved.pth'
    moved.write_bytes(saved.read_bytes())
    assert 'message_hub' in load_local_checkpoint(str(moved))
    # and the seed matters: another one trains another model
    runner = train_main([CONFIG, '--work-dir', str(tmp_path / 'c'), '--cfg-options', *opts,
                         'randomness.seed=1'])
    other = runner.model.state_dict()
    assert any(not torch.equal(states[0][k], other[k]) for k in states[0]
               if states[0][k].is_floating_point())
