"""``tools/train.py``: train a detector from a config with MMEngine's Runner.

Same arguments as mmdet 3.3's ``tools/train.py``, plus what a CPU-only or torch >= 2.6 machine
needs: gloo process groups when CUDA is absent, and resume that unpickles only checkpoints of the
run's own work_dir (see :mod:`mmlesion.engine.checkpoint`).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmlesion.engine.launch import add_launcher_arguments, export_local_rank

from .errors import add_debug_argument, check_image_folder, short_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an mmlesion detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size (auto_scale_lr)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='fully unpickle the --resume/load_from checkpoint even outside the work dir '
        '(only for files you trust: unpickling can run code)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=20 (key=value, xxx=[a,b])')
    add_debug_argument(parser)
    add_launcher_arguments(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def build_train_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); train without '
                             'it on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv: Optional[List[str]] = None):
    """Train; returns the Runner.  An error a user can fix prints what to do and exits with
    status 1; ``--debug`` keeps the traceback (:mod:`mmlesion.cli.errors`)."""
    args = parse_args(argv)
    resume = None if args.resume in (None, 'auto') else args.resume
    with short_errors(args.debug, tool='tools/train.py', checkpoint=resume):
        return _run(args)


def _run(args: argparse.Namespace):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers modules, installs the checkpoint loader)
    from mmlesion.engine import prepare_distributed, shutdown_distributed, trust_checkpoint_dir

    cfg = build_train_config(args)
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:  # dataset wrappers
        ds = ds.dataset
    check_image_folder(ds, 'tools/train.py', 'train_dataloader.dataset')
    # checkpoints in the run's own work dir were written by this code: resume may unpickle them
    os.makedirs(cfg.work_dir, exist_ok=True)
    trust_checkpoint_dir(cfg.work_dir)
    # and the checkpoints it saves are recognised as one's own wherever they are moved
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'RecordOwnCheckpointsHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='RecordOwnCheckpointsHook')]
    if args.trust_checkpoint and cfg.get('load_from'):
        trust_checkpoint_dir(cfg.load_from)
    prepare_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    shutdown_distributed()
    return runner
