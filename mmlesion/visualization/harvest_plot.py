"""The PR curves of harvested label sets on V_H^test (the layout of the paper's Fig. 5a),
written atomically."""
from typing import Mapping, Sequence, Tuple

import numpy as np

from .figures import save_figure_png

__all__ = ['plot_harvest_curves']


def plot_harvest_curves(curves: Mapping[str, object], path: str,
                        title: str = 'lesion harvesting on V_H^test',
                        precisions: Sequence[float] = (0.8, 0.85, 0.9, 0.95),
                        figsize: Tuple[float, float] = (5.6, 4.6), dpi: int = 120) -> None:
    """Plot ``{label: HarvestCurve}`` (:func:`mmlesion.harvest.table1.harvest_curve`): recall
    on x, precision on y; R alone is the red dot every curve starts from.

    Raises:
        ValueError: no curve.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError('plot_harvest_curves: no curve to draw')
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    first = next(iter(curves.values()))
    for label, c in curves.items():
        ax.plot(np.asarray(c.recall), np.asarray(c.precision), lw=1.4, label=label)
    ax.plot([first.recall[0]], [first.precision[0]], 'o', color='red',
            label=f'R alone (recall {first.recall[0]:.3f})')
    for p in precisions:
        ax.axhline(p, color='0.6', lw=0.8, ls=':')
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel('recall of the complete labels')
    ax.set_ylabel('precision')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='lower left')
    save_figure_png(fig, path)
