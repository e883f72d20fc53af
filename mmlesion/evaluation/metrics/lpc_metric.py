"""MMEngine metric of the lesion proposal classifier: how well ``s_g``, ``s_c`` and
``s_{g,c} = s_g s_c`` (paper Eq. 2) separate lesions from non-lesions among labelled proposals.

Numbers from :func:`mmlesion.evaluation.functional.pr_curves.lpc_score_summary`: ROC-AUC, PR-AUC
(average precision) and recall at 90% / 95% precision of each score (paper Fig. 5b;
docs/method.md#lpc).  Proposals of unknown label (-1) are scored (``out_file``) but not counted.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmdet.registry import METRICS
from mmlesion.evaluation.functional.pr_curves import (
    DEFAULT_PRECISIONS,
    LPC_SCORES,
    lpc_score_summary,
)
from mmlesion.utils.fileio import atomic_dump_json

__all__ = ['LPCMetric', 'lpc_metric_table']


def _scalar(value: Any) -> float:
    if hasattr(value, 'detach'):
        value = value.detach().cpu()
    return float(np.asarray(value, dtype=np.float64).reshape(()))


@METRICS.register_module()
class LPCMetric(BaseMetric):
    """ROC-AUC, PR-AUC and recall at precision of ``s_g``, ``s_c`` and ``s_g * s_c``.

    Reads from each predicted data sample (:class:`~mmlesion.models.classifiers.BaseLPC`):
    ``pred_score`` (``s_c``) and the metainfo ``key``, ``index``, ``s_g``, ``label``
    (:class:`~mmlesion.datasets.transforms.PackLPCInputs` sets them).

    Metric names: ``lpc/<score>_<name>`` with score ``s_g``, ``s_c``, ``s_gc`` and name
    ``roc_auc``, ``pr_auc``, ``recall@0.9``, ``recall@0.95``; plus ``lpc/num_pos``,
    ``lpc/num_neg``, ``lpc/num_unknown``.

    Args:
        precisions: precision levels of the recall read-outs.
        out_file: write every proposal's scores here (JSON, atomically):
            ``{"proposals": [{"key", "index", "s_g", "s_c", "label"}, ...], "metrics": {...}}``,
            sorted by key and index; ``tools/lpc_ablation.py`` draws its PR curves from it.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix: Optional[str] = 'lpc'

    def __init__(self, precisions: Sequence[float] = DEFAULT_PRECISIONS,
                 out_file: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.precisions = tuple(float(p) for p in precisions)
        self.out_file = out_file

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if hasattr(ds, 'to_dict'):
                ds = ds.to_dict()
            meta = ds.get('metainfo', ds)
            missing = [k for k in ('s_g', 'label') if k not in meta and k not in ds]
            if 'pred_score' not in ds or missing:
                raise KeyError('LPCMetric needs pred_score (the LPC predict output) and the '
                               f'metainfo s_g and label (PackLPCInputs); missing '
                               f'{missing + ([] if "pred_score" in ds else ["pred_score"])}')

            def get(k, default=None):
                return meta.get(k, ds.get(k, default))

            self.results.append(dict(key=str(get('key', '')), index=int(get('index', -1)),
                                     s_g=_scalar(get('s_g')), s_c=_scalar(ds['pred_score']),
                                     label=int(get('label'))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        results = sorted(results, key=lambda r: (r['key'], r['index']))
        labels = np.asarray([r['label'] for r in results], dtype=np.int64)
        s_g = np.asarray([r['s_g'] for r in results], dtype=np.float64)
        s_c = np.asarray([r['s_c'] for r in results], dtype=np.float64)
        summary = lpc_score_summary(s_g, s_c, labels, self.precisions)
        metrics = {f'{score}_{name}': value for score in LPC_SCORES
                   for name, value in summary[score].items()}
        metrics.update(num_pos=int((labels == 1).sum()), num_neg=int((labels == 0).sum()),
                       num_unknown=int(((labels != 0) & (labels != 1)).sum()))
        print_log('\n' + lpc_metric_table(summary), logger='current', level=logging.INFO)
        if self.out_file:
            atomic_dump_json(dict(proposals=results, metrics=metrics), self.out_file)
        return metrics


def lpc_metric_table(summary: Dict[str, Dict[str, float]]) -> str:
    """A text table of :func:`lpc_score_summary` (one row per score)."""
    names = list(next(iter(summary.values())).keys())
    lines = ['score  ' + '  '.join(f'{n:>11}' for n in names)]
    for score, values in summary.items():
        lines.append(f'{score:<6} ' + '  '.join(f'{values[n]:11.4f}' for n in names))
    return '\n'.join(lines)
