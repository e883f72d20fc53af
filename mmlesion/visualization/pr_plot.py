"""Precision-recall plots of lesion proposal scores (the layout of the paper's Fig. 5b), written
atomically."""
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from mmlesion.evaluation.functional.pr_curves import PRCurve

from .figures import save_figure_png

__all__ = ['plot_pr_curves']


def plot_pr_curves(curves: Mapping[str, PRCurve], path: str,
                   title: str = 'lesion proposal classifier',
                   styles: Optional[Mapping[str, dict]] = None,
                   precisions: Sequence[float] = (0.9, 0.95),
                   figsize: Tuple[float, float] = (5.6, 4.6), dpi: int = 120) -> None:
    """Plot PR curves (recall on x, precision on y) and write a PNG atomically.

    Args:
        curves: ``{label: PRCurve}`` (:func:`~mmlesion.evaluation.functional.pr_curve`); the
            legend shows ``label (AP ...)``.  Curves without positives are skipped.
        path: output PNG.
        title: figure title.
        styles: optional matplotlib line keywords per label (colour, dashes).
        precisions: precision levels drawn as dotted horizontal lines.
        figsize, dpi: figure size (inches) and resolution.

    Raises:
        ValueError: no curve to draw.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    drawable = {k: c for k, c in curves.items() if c.num_pos > 0 and c.recall.size}
    if not drawable:
        raise ValueError('plot_pr_curves: no curve with positives to draw')
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    for label, c in drawable.items():
        # the step curve from (0, 1): precision holds until recall reaches the next point
        recall = np.r_[0.0, c.recall]
        precision = np.r_[c.precision[0], c.precision]
        ap = float(np.sum(np.diff(recall) * c.precision))
        ax.step(recall, precision, where='pre', lw=1.4, label=f'{label} (AP {ap:.3f})',
                **(styles or {}).get(label, {}))
    for p in precisions:
        ax.axhline(p, color='0.6', lw=0.8, ls=':')
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel('recall')
    ax.set_ylabel('precision')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='lower left')
    save_figure_png(fig, path)
