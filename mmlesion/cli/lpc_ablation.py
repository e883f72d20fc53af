"""``tools/lpc_ablation.py``: the LPC ablation of the paper (Sec. IV-E, Fig. 5b).

    python tools/lpc_ablation.py --train proposals_train.json --eval proposals_vhtest.json \
        --image-root DeepLesion/Images_png --work-dir work_dirs/lpc_ablation \
        [--configs MULTIVIEW.py AXIAL.py 3D.py] [--names multi-view axial 3D] \
        [--epochs N] [--cfg-options ...]

Each config (default: the three DeepLesion configs of ``configs/lpc/``) is trained on the same
training proposals and tested on the same evaluation proposals, with mmengine's Runner and
:class:`~mmlesion.evaluation.LPCMetric`; then the proposals' ``s_g`` (LPG objectness), each
variant's ``s_c`` and ``s_g * s_c`` (paper Eq. 2) are compared on the labelled evaluation
proposals.  Written under ``--work-dir`` (atomically):

* ``lpc_ablation.png``: PR curves of ``s_g``, and of ``s_c`` and ``s_g s_c`` per variant;
* ``lpc_ablation.txt`` / ``.json``: PR-AUC, ROC-AUC and recall at 90% / 95% precision per curve,
  with the proposal counts;
* ``<name>/``: each variant's work dir (checkpoints, logs, ``scores.json`` with every
  evaluation proposal's ``s_g``, ``s_c`` and label).
"""
import argparse
import copy
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction

from mmlesion.evaluation.functional.pr_curves import binary_summary, pr_curve
from mmlesion.utils.fileio import atomic_dump_json, atomic_write_text
from mmlesion.utils.schedule import retime_epochs, without_validation

__all__ = ['DEFAULT_CONFIGS', 'DEFAULT_NAMES', 'parse_args', 'variant_config', 'ablation_rows',
           'ablation_table', 'run_ablation', 'main']

DEFAULT_CONFIGS = ('configs/lpc/lpc-multiview_resnet18_1xb32-10e_deeplesion.py',
                   'configs/lpc/lpc-axial_resnet18_1xb32-10e_deeplesion.py',
                   'configs/lpc/lpc-3d_resnet18_1xb32-10e_deeplesion.py')
DEFAULT_NAMES = ('multi-view', 'axial', '3D')
PRECISIONS = (0.9, 0.95)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='LPC ablation (paper Fig. 5b): train the multi-view, '
                                'axial and 3D LPCs on the same proposals, compare s_g, s_c and '
                                's_g * s_c')
    p.add_argument('--train', required=True, help='training proposal file (labelled)')
    p.add_argument('--eval', required=True, help='evaluation proposal file (labelled complete)')
    p.add_argument('--image-root', required=True, help="DeepLesion's Images_png folder")
    p.add_argument('--series-info', nargs='+', default=None,
                   help='DL_info.csv / converted JSONs for volumes the files give no spacing')
    p.add_argument('--work-dir', required=True, help='outputs and the variants\' work dirs')
    p.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                   help='LPC configs to compare (default: the three DeepLesion configs)')
    p.add_argument('--names', nargs='+', default=None,
                   help='legend names of the configs (default: multi-view axial 3D, or the '
                   'config file names)')
    p.add_argument('--epochs', type=int, default=None,
                   help='override the epochs (the cosine schedule ends with them)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides merged into every config (key=value)')
    return p.parse_args(argv)


def variant_config(config: str, train: str, evaluate: str, image_root: str, work_dir: str,
                   series_info: Optional[Sequence[str]] = None, epochs: Optional[int] = None,
                   cfg_options: Optional[dict] = None) -> Config:
    """One variant's config: its data on ``train`` / ``evaluate`` proposals and ``image_root``,
    no validation during training, the test metric writing ``<work_dir>/scores.json``."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(copy.deepcopy(cfg_options))
    for loader, ann in (('train_dataloader', train), ('test_dataloader', evaluate)):
        ds = cfg[loader].dataset
        ds.ann_file = str(ann)
        ds.data_root = ''
        ds.data_prefix = dict(img=str(image_root))
        ds.series_info = list(series_info) if series_info else None
    without_validation(cfg)  # tested once, after training
    if epochs is not None:
        retime_epochs(cfg, epochs)
    cfg.test_evaluator = dict(cfg.test_evaluator, out_file=osp.join(work_dir, 'scores.json'))
    cfg.work_dir = work_dir
    return cfg


def _load_scores(path: str) -> Dict[str, np.ndarray]:
    with open(path) as f:
        rows = json.load(f)['proposals']
    return dict(keys=[(r['key'], r['index']) for r in rows],
                s_g=np.asarray([r['s_g'] for r in rows], dtype=np.float64),
                s_c=np.asarray([r['s_c'] for r in rows], dtype=np.float64),
                label=np.asarray([r['label'] for r in rows], dtype=np.int64))


def ablation_rows(scores: Dict[str, Dict[str, np.ndarray]],
                  precisions: Sequence[float] = PRECISIONS) -> Dict[str, dict]:
    """Curves of the ablation: ``s_g`` once (the proposals are the same for every variant),
    then ``s_c`` and ``s_g s_c`` per variant.

    Args:
        scores: ``{variant: dict(s_g, s_c, label, keys)}`` of the same evaluation proposals.

    Returns:
        ``{row name: dict(scores, labels)}`` in table order.

    Raises:
        ValueError: the variants scored different proposals.
    """
    names = list(scores)
    if not names:
        raise ValueError('no variant to compare')
    ref = scores[names[0]]
    for n in names[1:]:
        if scores[n]['keys'] != ref['keys']:
            raise ValueError(f'variants {names[0]!r} and {n!r} scored different proposals')
    rows = {'s_g (LPG)': dict(scores=ref['s_g'], labels=ref['label'])}
    for n in names:
        rows[f's_c ({n})'] = dict(scores=scores[n]['s_c'], labels=ref['label'])
        rows[f's_g*s_c ({n})'] = dict(scores=ref['s_g'] * scores[n]['s_c'], labels=ref['label'])
    return rows


def ablation_table(rows: Dict[str, dict], precisions: Sequence[float] = PRECISIONS) -> tuple:
    """``(text table, {row: {pr_auc, roc_auc, recall@P...}})`` of :func:`ablation_rows`."""
    summary = {name: binary_summary(r['scores'], r['labels'], precisions)
               for name, r in rows.items()}
    cols = ['pr_auc', 'roc_auc'] + [f'recall@{float(p):g}' for p in precisions]
    head = ['score'.ljust(24)] + [f'{c:>12}' for c in cols]
    lines = [' '.join(head)]
    for name, values in summary.items():
        lines.append(' '.join([name.ljust(24)] + [f'{values[c]:12.4f}' for c in cols]))
    return '\n'.join(lines), summary


def run_ablation(configs: Sequence[str], names: Sequence[str], train: str, evaluate: str,
                 image_root: str, work_dir: str, series_info: Optional[Sequence[str]] = None,
                 epochs: Optional[int] = None, cfg_options: Optional[dict] = None) -> dict:
    """Train and test every variant, then write the figure and the table (see the module
    docstring).  Returns the JSON summary."""
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers the components)
    from mmlesion.structures.proposals import ProposalSet
    from mmlesion.utils.locations import resolve_config
    from mmlesion.visualization.pr_plot import plot_pr_curves

    if len(configs) != len(names) or len(set(names)) != len(names):
        raise ValueError(f'need one distinct name per config, got {list(names)} for '
                         f'{len(configs)} configs')
    ProposalSet.load(train), ProposalSet.load(evaluate)  # fail early, naming a bad file
    scores = {}
    for config, name in zip(configs, names):
        vdir = osp.join(work_dir, name.replace(' ', '_').replace('/', '_'))
        cfg = variant_config(resolve_config(config), train, evaluate, image_root, vdir,
                             series_info, epochs, cfg_options)
        runner = Runner.from_cfg(cfg)
        runner.train()
        runner.test()
        scores[name] = _load_scores(osp.join(vdir, 'scores.json'))
    rows = ablation_rows(scores)
    text, summary = ablation_table(rows)
    labels = scores[names[0]]['label']
    counts = dict(positive=int((labels == 1).sum()), negative=int((labels == 0).sum()),
                  unknown=int(((labels != 0) & (labels != 1)).sum()))
    header = (f'LPC ablation on {evaluate}: {counts["positive"]} lesion and '
              f'{counts["negative"]} non-lesion proposals ({counts["unknown"]} unknown, not '
              'counted); trained on ' + str(train))
    text = header + '\n' + text + '\n'
    out = dict(train=str(train), eval=str(evaluate), configs=dict(zip(names, configs)),
               counts=counts, rows=summary)
    png = osp.join(work_dir, 'lpc_ablation.png')
    curves = {name: pr_curve(r['scores'], r['labels']) for name, r in rows.items()}
    colors = dict(zip(names, ['C0', 'C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C8', 'C9']))
    styles = {'s_g (LPG)': dict(color='k')}
    for n in names:
        styles[f's_c ({n})'] = dict(color=colors.get(n), ls='--')
        styles[f's_g*s_c ({n})'] = dict(color=colors.get(n))
    if any(c.num_pos for c in curves.values()):
        plot_pr_curves(curves, png, title='LPC variants: s_g, s_c and s_g * s_c',
                       styles=styles, precisions=PRECISIONS)
        out['figure'] = png
    atomic_write_text(osp.join(work_dir, 'lpc_ablation.txt'), text)
    atomic_dump_json(out, osp.join(work_dir, 'lpc_ablation.json'), indent=1)
    print(text, end='')
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    names = args.names
    if names is None:
        names = (list(DEFAULT_NAMES) if list(args.configs) == list(DEFAULT_CONFIGS) else
                 [osp.splitext(osp.basename(c))[0] for c in args.configs])
    return run_ablation(args.configs, names, args.train, args.eval, args.image_root,
                        args.work_dir, args.series_info, args.epochs, args.cfg_options)


if __name__ == '__main__':
    main()
