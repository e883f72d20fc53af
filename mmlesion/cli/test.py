"""``tools/test.py``: test a detector from a config and a checkpoint with MMEngine's Runner.

    tools/test.py CONFIG CHECKPOINT --eval p3d [--ann Revised-Test1071.pkl] [--out det.pkl]
        [--show-dir DIR] [--work-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|...]
        [--trust-checkpoint] [--interp extrapolate|clamp] [--max-volumes N | --volumes KEY ...]
        [--amp-dtype bf16|fp16] [--channels-last] [--cross-volume] [--verbose] [--debug]

Arguments follow mmdet 3.3's ``tools/test.py``; ``--eval`` picks the evaluation
(docs/method.md#evaluation):

* ``p3d`` / ``iou3d`` (may be combined): the config's ``test_cfg`` becomes
  :class:`~mmlesion.engine.VolumeScanTestLoop` (every slice of every sub-volume of the annotation
  file, stacked into tracklets; its settings are kept when the config already uses it) and the
  evaluator :class:`~mmlesion.evaluation.P3DMetric` / :class:`~mmlesion.evaluation.IoU3DMetric`.
* ``recist2d``: the per-key-slice ``TestLoop`` with :class:`~mmlesion.evaluation.Recist2DMetric`.

``--ann`` replaces the ground truth (mmlesion JSON; for p3d / iou3d also a Lesion Harvester or
LENS pickle): the scan covers that file's volumes, the images root stays the dataset's.
``--out`` writes detections in the Lesion Harvester format (relative z, 1-based x/y, ``.pkl`` or
``.json``) -- ``tools/eval_p3d.py`` and the authors' evaluator read it.  ``--show-dir`` writes
overlay PNGs.  ``--cfg-options`` apply after the ``--eval`` switch (e.g.
``test_cfg.score_thr=0.05 test_cfg.batch_size=16``).  ``--amp-dtype``, ``--channels-last`` and
``--cross-volume`` set the volume scan's GPU path (``test_cfg.amp_dtype`` etc.,
docs/method.md#scan-gpu).

Checkpoints are fully unpickled only inside the work dir or with ``--trust-checkpoint``; other
files load weights-only (see :mod:`mmlesion.engine.checkpoint`).

Quiet by default: the environment and config dump go to the work dir's log file only
(``--verbose``: to the console too).  ``--max-volumes N`` (the first N volumes of the annotation
file) and ``--volumes KEY ...`` scan part of the set for a quick look; they set
``test_cfg.volumes``.
"""
import argparse
import contextlib
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, ConfigDict, DictAction

from mmlesion.engine.launch import add_launcher_arguments, export_local_rank

from .errors import add_debug_argument, check_image_folder, short_errors

__all__ = ['parse_args', 'build_test_config', 'main', 'EVALUATIONS']

VOLUME_METRICS = {'p3d': 'P3DMetric', 'iou3d': 'IoU3DMetric'}
SLICE_METRICS = {'recist2d': 'Recist2DMetric'}
EVALUATIONS = tuple(VOLUME_METRICS) + tuple(SLICE_METRICS)
OUR_METRICS = set(VOLUME_METRICS.values()) | set(SLICE_METRICS.values())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) an mmlesion detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--eval', nargs='+', choices=EVALUATIONS, default=None,
                        help='p3d and/or iou3d: volume-wise scan + 3D metrics; recist2d: key-slice '
                        '2D FROC (default: the config\'s test_cfg / test_evaluator)')
    parser.add_argument('--ann', help='ground-truth annotation file replacing the config\'s '
                        '(mmlesion JSON; for p3d/iou3d also a Lesion Harvester / LENS pickle)')
    parser.add_argument('--out', help='write detections in the Lesion Harvester format '
                        '(relative z, 1-based x/y) to this .pkl or .json')
    parser.add_argument('--show-dir', help='write overlay PNGs (detections and ground truth) here')
    parser.add_argument('--work-dir', help='the directory for logs and metric files')
    parser.add_argument('--interp', choices=('extrapolate', 'clamp'), default=None,
                        help='FROC interpolation (default: the metric\'s, extrapolate)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='fully unpickle CHECKPOINT even outside the work dir (only for files you trust)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings after the --eval switch, e.g. test_cfg.score_thr=0.05')
    part = parser.add_mutually_exclusive_group()
    part.add_argument('--max-volumes', type=int, metavar='N',
                      help='p3d/iou3d: scan only the first N volumes of the annotation file, for '
                      'a quick look (sets test_cfg.volumes; the metrics count only those)')
    part.add_argument('--volumes', nargs='+', metavar='KEY',
                      help='p3d/iou3d: scan only these volumes, e.g. 000001_01_01_103-115 (sets '
                      'test_cfg.volumes)')
    parser.add_argument('--strict', action='store_true',
                        help='volume scan: stop at the first unreadable slice or missing series '
                        'folder (default: treat an unreadable slice as missing, skip a volume '
                        'that cannot be read, and name them all in a summary)')
    parser.add_argument('--no-resume', action='store_true',
                        help='volume scan: rescan every volume (default: volumes finished by an '
                        'earlier run with the same checkpoint and settings are loaded from '
                        'WORK_DIR/volume_scan/)')
    gpu = parser.add_argument_group('volume scan on a GPU (docs/method.md#scan-gpu)')
    gpu.add_argument('--amp-dtype', choices=('bf16', 'fp16'), default=None,
                     help='volume scan: run the model under autocast in this dtype (sets '
                     'test_cfg.amp_dtype; default: the config\'s, float32)')
    gpu.add_argument('--channels-last', action='store_true',
                     help='volume scan: channels-last weights and inputs (sets '
                     'test_cfg.channels_last)')
    gpu.add_argument('--cross-volume', action='store_true',
                     help='volume scan: fill each forward pass with slices of consecutive '
                     'volumes (sets test_cfg.cross_volume)')
    gpu.add_argument('--compile', action='store_true',
                     help='volume scan: torch.compile the network (sets test_cfg.compile)')
    parser.add_argument('--verbose', action='store_true',
                        help='print the environment and the config dump on the console too '
                        '(default: only in the work dir\'s log file)')
    add_debug_argument(parser)
    add_launcher_arguments(parser)
    args = parser.parse_args(argv)
    if args.max_volumes is not None and args.max_volumes < 1:
        parser.error(f'--max-volumes must be >= 1, got {args.max_volumes}')
    export_local_rank(args)
    if args.out is not None and not args.out.lower().endswith(('.pkl', '.pickle', '.json')):
        parser.error(f'--out must end with .pkl, .pickle or .json, got {args.out!r}')
    if args.eval:
        kinds = {e in VOLUME_METRICS for e in args.eval}
        if len(kinds) > 1:
            parser.error('--eval recist2d runs on key slices and p3d/iou3d on whole volumes: '
                         'run them in two calls')
    return args


def _metrics_list(cfg: Config) -> List[dict]:
    ev = cfg.get('test_evaluator')
    if ev is None:
        return []
    return list(ev) if isinstance(ev, (list, tuple)) else [ev]


def _test_dataset_cfg(cfg: Config) -> dict:
    ds = cfg.test_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds


def _switch_evaluation(cfg: Config, evals: List[str]) -> None:
    """Point test_cfg / test_evaluator at the requested evaluation, keeping existing settings."""
    existing = {m.get('type'): m for m in _metrics_list(cfg)}
    volume = evals[0] in VOLUME_METRICS
    names = [(VOLUME_METRICS if volume else SLICE_METRICS)[e] for e in dict.fromkeys(evals)]
    metrics = [ConfigDict(existing.get(n) or dict(type=n)) for n in names]
    cfg.test_evaluator = metrics[0] if len(metrics) == 1 else metrics
    loop = cfg.get('test_cfg') or {}
    if volume:
        if loop.get('type') != 'VolumeScanTestLoop':
            cfg.test_cfg = ConfigDict(type='VolumeScanTestLoop')
    elif loop.get('type') == 'VolumeScanTestLoop':
        cfg.test_cfg = ConfigDict(type='TestLoop')


def _apply_cli(cfg: Config, args: argparse.Namespace) -> None:
    metrics = [m for m in _metrics_list(cfg) if m.get('type') in OUR_METRICS]
    volume_scan = (cfg.get('test_cfg') or {}).get('type') == 'VolumeScanTestLoop'
    if args.ann:
        ann = osp.abspath(args.ann)
        if not osp.isfile(ann):
            raise SystemExit(f'--ann: file not found: {args.ann}')
        if volume_scan:
            # the scan reads the file and hands each volume's ground truth to the metrics, so a
            # test_cfg.volumes restriction applies to both
            cfg.test_cfg.ann_file = ann
            for m in metrics:
                m.ann_file = None
        else:
            if not ann.lower().endswith('.json'):
                raise SystemExit('--ann with the key-slice test loop must be mmlesion JSON (the '
                                 'dataset reads its images); convert a release pickle with '
                                 'tools/import_annotations.py --dl-info, or use --eval p3d')
            _test_dataset_cfg(cfg).ann_file = ann
            for m in metrics:
                m.ann_file = ann
    if args.interp:
        if not metrics:
            raise SystemExit('--interp applies to P3DMetric / IoU3DMetric / Recist2DMetric: '
                             'give --eval')
        for m in metrics:
            m.interp = args.interp
    if args.out:
        if not metrics:
            raise SystemExit('--out writes the detections of P3DMetric / IoU3DMetric / '
                             'Recist2DMetric: give --eval')
        metrics[0].det_out = osp.abspath(args.out)
    if args.show_dir:
        show_dir = osp.abspath(args.show_dir)
        if volume_scan:
            cfg.test_cfg.show_dir = show_dir
        else:
            hooks = list(cfg.get('custom_hooks') or [])
            hooks.append(dict(type='KeySliceOverlayHook', out_dir=show_dir))
            cfg.custom_hooks = hooks
    if args.max_volumes is not None or args.volumes:
        _restrict_volumes(cfg, args, volume_scan)
    if args.launcher != 'none':
        # one collect folder per metric: a shared one could be removed by rank 0 while another
        # rank already writes the next metric's part
        for i, m in enumerate(metrics):
            if m.get('collect_device', 'cpu') == 'cpu' and m.get('collect_dir') is None:
                m.collect_dir = osp.join(osp.abspath(cfg.work_dir), f'.collect_{i}_{m.type}')


def _scan_annotation_set(cfg: Config):
    """The annotation set the volume scan reads: as VolumeScanTestLoop chooses it."""
    from mmlesion.evaluation.annotation_set import load_annotation_set
    loop = cfg.test_cfg
    ann = loop.get('ann_file')
    if not ann:
        anns = [m.get('ann_file') for m in _metrics_list(cfg)
                if m.get('type') in VOLUME_METRICS.values() and m.get('ann_file')]
        ds = _test_dataset_cfg(cfg)
        root, path = ds.get('data_root'), ds.get('ann_file')
        ann = anns[0] if anns else (
            osp.join(root, path) if root and path and not osp.isabs(path) else path)
    if not ann:
        raise SystemExit('--max-volumes / --volumes: the config names no annotation file; '
                         'give --ann')
    return load_annotation_set(ann, loop.get('ann_format', 'auto'), loop.get('lens_subset'))


def _restrict_volumes(cfg: Config, args: argparse.Namespace, volume_scan: bool) -> None:
    """``--max-volumes`` / ``--volumes`` -> ``test_cfg.volumes``."""
    from mmlesion.structures import normalize_key

    from .errors import CLIError
    if not volume_scan:
        raise SystemExit('--max-volumes / --volumes apply to the volume scan: give --eval p3d '
                         '(or iou3d)')
    keys = list(_scan_annotation_set(cfg).volumes)
    if args.volumes:
        wanted = [normalize_key(k) for k in args.volumes]
        unknown = [k for k in wanted if k not in keys]
        if unknown:
            raise CLIError(f'{len(unknown)} of the --volumes are not in the annotation file: '
                           f'{unknown[:5]}',
                           f'its volumes are e.g. {keys[:3]} ({len(keys)} in all)')
        cfg.test_cfg.volumes = wanted
    else:
        cfg.test_cfg.volumes = keys[:args.max_volumes]


@contextlib.contextmanager
def _config_dump_to_log_file(verbose: bool):
    """While the Runner is built, its environment and config dump go to the log file only."""
    from mmengine.runner import Runner
    original = Runner._log_env
    if verbose:
        yield
        return

    def log_env_to_file(runner, env_cfg):
        console = [h for h in runner.logger.handlers if type(h) is logging.StreamHandler]
        for h in console:
            runner.logger.removeHandler(h)
        try:
            original(runner, env_cfg)
        finally:
            for h in console:
                runner.logger.addHandler(h)
        log_file = osp.join(runner.log_dir, f'{runner.timestamp}.log')
        runner.logger.info(f'environment and config: {log_file} (--verbose prints them here)')

    Runner._log_env = log_env_to_file
    try:
        yield
    finally:
        Runner._log_env = original


def build_test_config(args: argparse.Namespace) -> Config:
    """The config ``runner.test()`` runs: ``--eval`` switch, then ``--cfg-options``, then the
    command-line paths (``--ann``, ``--out``, ``--show-dir``, ``--interp``)."""
    cfg = Config.fromfile(args.config)
    if args.eval:
        _switch_evaluation(cfg, args.eval)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    _apply_cli(cfg, args)
    if (cfg.get('test_cfg') or {}).get('type') == 'VolumeScanTestLoop':
        if getattr(args, 'strict', False):
            cfg.test_cfg.strict = True
        if getattr(args, 'no_resume', False):
            cfg.test_cfg.resume = False
        if getattr(args, 'amp_dtype', None):
            cfg.test_cfg.amp_dtype = args.amp_dtype
        if getattr(args, 'channels_last', False):
            cfg.test_cfg.channels_last = True
        if getattr(args, 'cross_volume', False):
            cfg.test_cfg.cross_volume = True
        if getattr(args, 'compile', False):
            cfg.test_cfg.compile = True
    elif any(getattr(args, k, None) for k in ('amp_dtype', 'channels_last', 'cross_volume',
                                              'compile')):
        raise SystemExit('--amp-dtype, --channels-last, --cross-volume and --compile set the '
                         'volume scan '
                         '(VolumeScanTestLoop): give --eval p3d or iou3d')
    return cfg


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the test; returns the metrics dict (on every rank; empty-valued off rank 0).

    An error a user can fix prints what to do and exits with status 1; ``--debug`` keeps the
    exception and its traceback (:mod:`mmlesion.cli.errors`).
    """
    args = parse_args(argv)
    with short_errors(args.debug, tool='tools/test.py', checkpoint=args.checkpoint):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers modules, installs the checkpoint loader)
    import mmlesion.visualization  # noqa: F401  (KeySliceOverlayHook)
    from mmlesion.engine import prepare_distributed, trust_checkpoint_dir

    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    cfg = build_test_config(args)
    check_image_folder(_test_dataset_cfg(cfg), 'tools/test.py', 'test_dataloader.dataset')
    os.makedirs(cfg.work_dir, exist_ok=True)
    # checkpoints in the run's own work dir were written by this code
    trust_checkpoint_dir(cfg.work_dir)
    if args.trust_checkpoint:
        trust_checkpoint_dir(args.checkpoint)
    prepare_distributed(cfg, args.launcher)
    with _config_dump_to_log_file(args.verbose):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    from mmlesion.engine import shutdown_distributed
    shutdown_distributed()
    return metrics
