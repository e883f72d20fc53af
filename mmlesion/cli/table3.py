"""``tools/benchmarks/table3.py``: the paper's Table III -- detectors trained on DeepLesion's
RECIST marks R (and, given a harvest round's training file, on R ∪ P_H^+), each evaluated by
P3D on a completely annotated test set (docs/method.md#missing-labels, SPEC §4).

    tools/benchmarks/table3.py --setting synthetic --data-root work_dirs/table3/data \
        --work-dir work_dirs/table3 [--epochs N] [--harvest-train ROUND/next_train.json] \
        [--rows NAME ...] [--test-ann FILE]
    tools/benchmarks/table3.py --setting deeplesion --work-dir work_dirs/table3_deeplesion \
        --test-ann Revised-Test1071.pkl [--harvest-train ...] [--launcher pytorch]

Each row trains its config with ``tools/train.py``'s code (no validation during training) and
scores the final checkpoint with ``tools/test.py --eval p3d`` (the volume scan, Kalman stacking
and :class:`~mmlesion.evaluation.P3DMetric`, the same path for every detector).  Rows marked
``+ P_H^+`` (and ``MSCN w/ HNSL``, whose hard negatives P^- are in the same file) train on
``--harvest-train`` instead of the config's training file; without it they are left out.  Printed
and written under ``--work-dir`` (atomically): ``table3.txt`` (the paper's layout, recall % at
[0.125, 0.25, 0.5, 1, 2, 4, 8] FPs per volume and AP %, ours above the paper's), ``table3.json``
and, per row, ``<row>/`` (config, checkpoints, logs) and ``<row>/result.json``.  A row whose
``result.json`` matches its config and training file is reused, so an interrupted run resumes
and adding ``--harvest-train`` later trains the new rows only.

``--setting synthetic`` (the default) runs the CPU-sized configs of ``configs/synthetic/`` on
the data under ``--data-root`` (``tools/make_synthetic.py`` + ``tools/convert_deeplesion.py``;
test truth: its ``ground_truth/Revised-Test.pkl``); ``--setting deeplesion`` the paper-sized
configs on the data their configs name, e.g. on GPUs under ``torchrun`` (``--launcher``).
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config, DictAction

from mmlesion.engine.launch import add_launcher_arguments, export_local_rank
from mmlesion.utils.fileio import atomic_dump_json, atomic_write_text, file_sha256
from mmlesion.utils.schedule import retime_epochs, without_validation

from .errors import add_debug_argument, short_errors

__all__ = ['FPS', 'PAPER_TABLE3', 'PAPER_ORDER', 'Row', 'ROWS', 'parse_args', 'select_rows',
           'row_config', 'format_table', 'ordering_report', 'run_table3', 'main']

# FPs per volume of Table III's recall columns
FPS = (0.125, 0.25, 0.5, 1, 2, 4, 8)
# The paper's Table III (V_D^test, P3D): recall % at FPS, AP %
PAPER_TABLE3 = {
    'MULAN': ((11.43, 18.69, 26.98, 38.99, 50.15, 60.38, 69.71), 41.8),
    'Faster R-CNN': ((7.20, 13.21, 20.97, 31.27, 43.87, 54.92, 64.20), 34.2),
    'w/ OBHS': ((2.51, 4.77, 8.40, 17.46, 22.65, 34.24, 47.01), 17.3),
    'w/ OBSS': ((6.85, 12.58, 21.92, 32.39, 44.53, 57.08, 67.91), 36.3),
    'w/ M-OBHS': ((8.53, 13.67, 22.89, 34.46, 46.85, 58.31, 68.08), 38.3),
    'Faster R-CNN + P_H^+': ((10.35, 15.98, 25.02, 35.63, 47.15, 57.74, 66.77), 38.5),
    'CenterNet 3-slice': ((12.91, 19.89, 26.19, 35.77, 45.32, 56.94, 67.83), 41.0),
    'CenterNet 3-slice + P_H^+': ((14.38, 19.75, 28.04, 36.89, 46.82, 58.94, 68.70), 42.8),
    'CenterNet w/ HNSL': ((19.26, 25.87, 34.54, 43.17, 53.34, 63.08, 71.68), 48.3),
    'MSCN': ((11.92, 18.42, 27.54, 38.91, 50.15, 60.76, 69.82), 43.0),
    'MSCN + P_H^+': ((13.40, 19.16, 27.34, 37.54, 49.33, 60.52, 70.18), 43.6),
    'MSCN w/ HNSL': ((19.86, 27.11, 36.21, 46.82, 56.89, 66.82, 74.73), 51.9),
}
# the AP ordering of the missing-label strategies and MSCN-HNSL in the paper, lowest first
PAPER_ORDER = ('w/ OBHS', 'Faster R-CNN', 'w/ OBSS', 'w/ M-OBHS', 'MSCN w/ HNSL')


class Row(NamedTuple):
    """One Table III row: ``name`` (the paper's), its config per setting, the input slices, and
    whether it trains on the harvest round's file (R ∪ P_H^+, with P^- for the HNSL)."""
    name: str
    synthetic: str
    deeplesion: str
    slices: int
    harvested: bool = False
    hard_negatives: bool = False


_S = 'configs/synthetic/'
_FRCNN = ('faster-rcnn{}_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
          'configs/faster_rcnn/faster-rcnn{}_densenet121-9slice_1xb8-8e_deeplesion.py')
ROWS = (
    Row('Faster R-CNN', _S + _FRCNN[0].format(''), _FRCNN[1].format(''), 9),
    Row('w/ OBHS', _S + _FRCNN[0].format('-obhs'), _FRCNN[1].format('-obhs'), 9),
    Row('w/ OBSS', _S + _FRCNN[0].format('-obss'), _FRCNN[1].format('-obss'), 9),
    Row('w/ M-OBHS', _S + _FRCNN[0].format('-mobhs'), _FRCNN[1].format('-mobhs'), 9),
    Row('Faster R-CNN + P_H^+', _S + _FRCNN[0].format(''), _FRCNN[1].format(''), 9, True),
    Row('CenterNet 3-slice', _S + 'centernet_densenet-tiny-3slice_1xb8-cpu_synthetic.py',
        'configs/centernet_3slice.py', 3),
    Row('CenterNet 3-slice + P_H^+', _S + 'centernet_densenet-tiny-3slice_1xb8-cpu_synthetic.py',
        'configs/centernet_3slice.py', 3, True),
    Row('MSCN', _S + 'mscn_densenet-tiny-9slice_1xb8-cpu_synthetic.py', 'configs/mscn.py', 9),
    Row('MSCN + P_H^+', _S + 'mscn_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
        'configs/mscn.py', 9, True),
    Row('MSCN w/ HNSL', _S + 'mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
        'configs/mscn_hnsl.py', 9, True, True),
    # not in the paper: the seeds' M3DCF-style one-stage detector (docs/method.md#seed-systems)
    Row('M3DCF-style', _S + 'm3dcf-atss_densenet-tiny-9slice-fuse3_fpn_1xb8-cpu_synthetic.py',
        'configs/m3dcf/m3dcf-atss_densenet121-9slice-fuse3_fpn_1xb8-8e_deeplesion.py', 9),
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="The paper's Table III: train each detector, score it by P3D on a complete "
        'test set, print our recalls and AP beside the paper\'s')
    p.add_argument('--setting', choices=('synthetic', 'deeplesion'), default='synthetic',
                   help='synthetic (default): the CPU configs of configs/synthetic/ on '
                   '--data-root; deeplesion: the paper-sized configs')
    p.add_argument('--work-dir', required=True, help='the table and one folder per row')
    p.add_argument('--data-root', default=None,
                   help='dataset folder (Images_png/, annotations/, ground_truth/) the configs '
                   'are pointed at; needed for --setting synthetic')
    p.add_argument('--test-ann', default=None,
                   help='complete test ground truth (mmlesion JSON or LH pickle); default '
                   'DATA_ROOT/ground_truth/Revised-Test.pkl')
    p.add_argument('--harvest-train', default=None,
                   help="a harvest round's next_train.json (R, P_H^+ and hard negatives): adds "
                   'the "+ P_H^+" rows and MSCN w/ HNSL')
    p.add_argument('--rows', nargs='+', default=None,
                   help='row names to run (default: all that the data allow), e.g. "MSCN" '
                   '"w/ OBSS"')
    p.add_argument('--epochs', type=int, default=None,
                   help='train every row this many epochs (schedules retimed; default: each '
                   "config's)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides merged into every config (key=value)')
    add_debug_argument(p)
    add_launcher_arguments(p)
    args = p.parse_args(argv)
    export_local_rank(args)
    return args


def select_rows(names: Optional[Sequence[str]], harvested: bool) -> List[Row]:
    """The rows to run: ``names`` (all by default) in the table's order; rows that need the
    harvest file are left out without it (asking for one by name is an error)."""
    known = [r.name for r in ROWS]
    if names:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f'unknown Table III rows {unknown}; known: {known}')
    rows = [r for r in ROWS if not names or r.name in names]
    if not harvested:
        need = [r.name for r in rows if r.harvested]
        if names and need:
            raise SystemExit(f'rows {need} train on a harvest round\'s file: give '
                             '--harvest-train ROUND/next_train.json')
        rows = [r for r in rows if not r.harvested]
    return rows


def _slug(name: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in name).strip('_').lower()


def row_config(row: Row, setting: str, work_dir: str, data_root: Optional[str] = None,
               harvest_train: Optional[str] = None, epochs: Optional[int] = None,
               cfg_options: Optional[dict] = None) -> Config:
    """One row's training config: its setting's config, pointed at ``data_root`` (all three
    loaders), trained on ``harvest_train`` for harvested rows, no validation during training,
    ``epochs`` if given (schedules retimed), ``cfg_options`` last."""
    from mmlesion.utils.locations import resolve_config
    cfg = Config.fromfile(resolve_config(row.synthetic if setting == 'synthetic'
                                         else row.deeplesion))
    if data_root is not None:
        root = data_root.rstrip('/') + '/'
        cfg.data_root = root
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(loader):
                cfg[loader].dataset.data_root = root
    if row.harvested:
        if harvest_train is None:
            raise ValueError(f'row {row.name!r} trains on a harvest round\'s file')
        cfg.train_dataloader.dataset.ann_file = osp.abspath(harvest_train)
    ds = cfg.train_dataloader.dataset
    if bool(ds.get('drop_hard_negatives', False)) == row.hard_negatives:
        raise ValueError(f'{row.name}: the config {"drops" if row.hard_negatives else "keeps"} '
                         'hard negatives, the row needs the opposite')
    without_validation(cfg)
    if epochs is not None:
        retime_epochs(cfg, epochs)
    if cfg_options:
        cfg.merge_from_dict(copy.deepcopy(cfg_options))
    cfg.work_dir = work_dir
    return cfg


def _fmt(v: Optional[float]) -> str:
    return '  -  ' if v is None else f'{v:5.2f}'


def format_table(results: Dict[str, dict], setting: str) -> str:
    """Table III's layout: per row our recall % at :data:`FPS` and AP %, then the paper's."""
    head = (f'{"Method":<26} {"In":>2} {"R":>1} {"P_H^+":>5} {"P^-":>3} | '
            + ' '.join(f'{f:>5g}' for f in FPS) + ' |   AP')
    lines = [f'Table III ({setting}): recall (%) at FPs per volume and AP (%), P3D', head,
             '-' * len(head)]
    for name, res in results.items():
        row = next(r for r in ROWS if r.name == name)
        marks = f'{row.slices:>2} ✓ {"✓" if row.harvested else " ":>5} ' \
                f'{"✓" if row.hard_negatives else " ":>3}'
        ours = [100 * v for v in res['recall']]
        lines.append(f'{name:<26} {marks} | ' + ' '.join(_fmt(v) for v in ours)
                     + f' | {_fmt(100 * res["ap"])}')
        paper = PAPER_TABLE3.get(name)
        if paper is not None:
            lines.append(f'{"  paper":<26} {"":>14} | ' + ' '.join(_fmt(v) for v in paper[0])
                         + f' | {_fmt(paper[1])}')
    return '\n'.join(lines)


def ordering_report(results: Dict[str, dict]) -> List[str]:
    """For each neighbouring pair of :data:`PAPER_ORDER` that both ran: whether our AP keeps
    the paper's order (lower < higher)."""
    have = [n for n in PAPER_ORDER if n in results]
    out = []
    for lo, hi in zip(have, have[1:]):
        a, b = results[lo]['ap'], results[hi]['ap']
        verdict = 'matches' if a < b else 'does not match'
        out.append(f'{lo} < {hi}: ours {100 * a:.1f} vs {100 * b:.1f} AP -- {verdict} the '
                   f'paper ({PAPER_TABLE3[lo][1]} < {PAPER_TABLE3[hi][1]})')
    return out


def _final_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        path = f.read().strip()
    return path if osp.isabs(path) else osp.join(work_dir, osp.basename(path))


def _is_main() -> bool:
    return int(os.environ.get('RANK', '0')) == 0


def run_row(row: Row, cfg: Config, row_dir: str, test_ann: str, launcher: str = 'none',
            fingerprint: Optional[dict] = None) -> dict:
    """Train ``cfg`` in ``row_dir`` (resuming a run that left checkpoints behind), test the final
    checkpoint by P3D on ``test_ann``; returns (and writes ``result.json``) the recalls at
    :data:`FPS`, AP and the wall times."""
    from mmlesion.cli.test import main as test_main
    from mmlesion.cli.train import main as train_main
    os.makedirs(row_dir, exist_ok=True)
    config_path = osp.join(row_dir, 'config.py')
    # every rank writes the same text atomically: no rank reads a half-written file, and no
    # barrier is needed before the process group exists (train_main starts it)
    atomic_write_text(config_path, cfg.pretty_text)
    t0 = time.time()
    resume = ['--resume'] if osp.exists(osp.join(row_dir, 'last_checkpoint')) else []
    train_main([config_path, '--work-dir', row_dir, *resume, '--launcher', launcher])
    t1 = time.time()
    metrics = test_main([config_path, _final_checkpoint(row_dir), '--eval', 'p3d', '--ann',
                         test_ann, '--work-dir', osp.join(row_dir, 'test_p3d'),
                         '--launcher', launcher])
    t2 = time.time()
    result = dict(name=row.name, recall=[float(metrics[f'p3d/sens@{f:g}']) for f in FPS],
                  ap=float(metrics['p3d/AP']), train_s=round(t1 - t0, 1),
                  test_s=round(t2 - t1, 1), fingerprint=fingerprint or {})
    if _is_main():
        atomic_dump_json(result, osp.join(row_dir, 'result.json'), indent=1)
    return result


def run_table3(args: argparse.Namespace) -> dict:
    import mmlesion  # noqa: F401  (registers the components)
    if args.setting == 'synthetic' and args.data_root is None:
        raise SystemExit('--setting synthetic needs --data-root (tools/make_synthetic.py and '
                         'tools/convert_deeplesion.py write one)')
    test_ann = args.test_ann
    if test_ann is None:
        if args.data_root is None:
            raise SystemExit('give --test-ann (the complete test ground truth)')
        test_ann = osp.join(args.data_root, 'ground_truth', 'Revised-Test.pkl')
    if not osp.isfile(test_ann):
        raise SystemExit(f'test ground truth not found: {test_ann}')
    if args.harvest_train is not None and not osp.isfile(args.harvest_train):
        raise SystemExit(f'--harvest-train: no such file {args.harvest_train}')
    rows = select_rows(args.rows, args.harvest_train is not None)
    harvest_sha = file_sha256(args.harvest_train) if args.harvest_train else None
    results, reused, t_start = {}, [], time.time()
    for row in rows:
        row_dir = osp.join(args.work_dir, _slug(row.name))
        cfg = row_config(row, args.setting, row_dir, args.data_root, args.harvest_train,
                         args.epochs, args.cfg_options)
        fingerprint = dict(config=cfg.pretty_text, test_ann=osp.abspath(test_ann),
                           harvest_sha256=harvest_sha if row.harvested else None)
        done = osp.join(row_dir, 'result.json')
        if osp.exists(done):
            with open(done) as f:
                old = json.load(f)
            if old.get('fingerprint') == fingerprint:
                print(f'[table3] {row.name}: reusing {done}', flush=True)
                results[row.name] = old
                reused.append(row.name)
                continue
        print(f'[table3] {row.name}: training {row_dir}', flush=True)
        results[row.name] = run_row(row, cfg, row_dir, test_ann, args.launcher, fingerprint)
        r = results[row.name]
        print(f'[table3] {row.name}: AP {100 * r["ap"]:.1f}, train {r["train_s"] / 60:.1f} min, '
              f'test {r["test_s"] / 60:.1f} min', flush=True)
    text = format_table(results, args.setting)
    order = ordering_report(results)
    total = time.time() - t_start
    rows_min = sum(r['train_s'] + r['test_s'] for r in results.values()) / 60
    text += '\n\nPaper AP order ' + ' < '.join(PAPER_ORDER) + ':\n' + '\n'.join(
        '  ' + line for line in order) + (
        f'\n\n{len(rows) - len(reused)} rows trained and tested in {total / 60:.1f} min, '
        f'{len(reused)} reused; training + testing of all {len(rows)} rows as recorded: '
        f'{rows_min:.1f} min\n')
    summary = dict(setting=args.setting, test_ann=osp.abspath(test_ann),
                   harvest_train=args.harvest_train, fps=list(FPS),
                   rows={n: {k: v for k, v in r.items() if k != 'fingerprint'}
                         for n, r in results.items()},
                   paper={n: dict(recall=list(v[0]), ap=v[1]) for n, v in PAPER_TABLE3.items()},
                   ordering=order, wall_s=round(total, 1), reused=reused)
    if _is_main():
        atomic_write_text(osp.join(args.work_dir, 'table3.txt'), text)
        atomic_dump_json(summary, osp.join(args.work_dir, 'table3.json'), indent=1)
        print(text, end='')
    return summary


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    with short_errors(args.debug, tool='tools/benchmarks/table3.py'):
        return run_table3(args)
