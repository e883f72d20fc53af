"""``tools/harvest_round.py``: iterative lesion harvesting rounds (docs/method.md#harvesting).

    tools/harvest_round.py CONFIG --work-dir DIR [--round N | --rounds K] [--launcher pytorch]
    tools/dist_harvest.sh CONFIG GPUS --work-dir DIR [--rounds K]
    tools/harvest_round.py CONFIG --write-round1-ann FILE

Each round writes ``DIR/round_{i}/`` (:mod:`mmlesion.harvest.round`): the LPG and LPC
checkpoints, the proposals, ``harvested_positives.{pkl,json}``, ``hard_negatives.{pkl,json}``,
``recist_3d_boxes.pkl``, the next round's ``next_train.json``, Table I / II (``tables.txt``,
``table1_pr.png``) and ``report.json``.  Rerunning resumes at the first unfinished step; a
finished round is a no-op.  ``--write-round1-ann`` writes round 1's LPG training set (R and the
marks of V_M) so that an LPG trained on it beforehand can be reused
(``harvest.lpg.round1_checkpoint``, as ``make demo`` does).
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmlesion.engine.launch import add_launcher_arguments, export_local_rank

from .errors import CLIError, add_debug_argument, short_errors

__all__ = ['parse_args', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Iterative lesion harvesting: LPG, scan, LPC, harvest, report (resumable)')
    p.add_argument('config', help='harvest config (configs/harvest/)')
    p.add_argument('--work-dir', help='the harvest folder (round_{i}/ inside); default '
                   'work_dirs/<config name>')
    which = p.add_mutually_exclusive_group()
    which.add_argument('--round', type=int, help='run (or resume) this round only; the '
                       'rounds before it must be finished')
    which.add_argument('--rounds', type=int, help='run rounds 1..K (default: harvest.rounds)')
    p.add_argument('--write-round1-ann', metavar='FILE',
                   help='only write round 1\'s LPG training set (R and the V_M marks) to FILE')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings, e.g. harvest.v_h_volumes=60 harvest.lpc.epochs=3')
    add_debug_argument(p)
    add_launcher_arguments(p)
    args = p.parse_args(argv)
    export_local_rank(args)
    return args


def main(argv: Optional[List[str]] = None):
    """Run the rounds; returns their reports (or the path written by ``--write-round1-ann``).
    Errors a user can fix print what to do and exit with status 1 (``--debug``: traceback)."""
    args = parse_args(argv)
    with short_errors(args.debug, tool='tools/harvest_round.py'):
        return _run(args)


def _run(args: argparse.Namespace):
    import mmlesion  # noqa: F401  (registers the components)
    from mmlesion.engine import prepare_distributed, shutdown_distributed
    from mmlesion.harvest import HarvestRunner
    from mmlesion.utils.locations import resolve_config

    cfg = Config.fromfile(resolve_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    work_dir = args.work_dir or os.path.join(
        'work_dirs', os.path.splitext(os.path.basename(args.config))[0])
    if args.launcher != 'none':
        import torch.distributed as torch_dist
        from mmengine.dist import init_dist

        # CPU: a gloo process group (mmlesion.engine.launch); GPU: mmengine's NCCL set-up
        prepare_distributed(Config(dict(env_cfg=cfg.get('env_cfg', {}))), args.launcher)
        if not torch_dist.is_initialized():
            init_dist(args.launcher)
    try:  # every file and volume the config names, checked before any training
        runner = HarvestRunner(cfg, work_dir, launcher=args.launcher)
        runner.sets  # noqa: B018
    except ValueError as e:
        raise CLIError(f'{args.config}: {e}', 'fix the harvest settings of the config (see '
                       'configs/harvest/ and docs/method.md#harvesting)') from None
    if args.write_round1_ann:
        runner.round1_training_file(args.write_round1_ann)
        print(f'wrote round 1\'s LPG training set to {args.write_round1_ann}')
        return args.write_round1_ann
    reports = runner.run(rounds=args.rounds, only_round=args.round)
    shutdown_distributed()
    return reports


if __name__ == '__main__':
    main()
