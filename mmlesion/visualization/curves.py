"""Training curves from MMEngine's ``vis_data/scalars.json`` (one JSON object per logged step)."""
import glob
import json
import os
from typing import Dict, List, Sequence

from .figures import save_figure_png


def read_scalars(work_dir: str) -> List[dict]:
    """All training log records of the newest run under ``work_dir`` (records with a loss)."""
    runs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}: was the run logged '
                                'with LocalVisBackend?')
    with open(runs[-1]) as f:
        return [r for r in map(json.loads, filter(str.strip, f)) if 'loss' in r]


def plot_loss_curves(records: Sequence[dict], out_png: str,
                     keys: Sequence[str] = ('loss', 'loss_center_heatmap', 'loss_wh',
                                            'loss_offset'),
                     title: str = 'training loss') -> Dict[str, List[float]]:
    """Plot each loss term against the iteration on a log axis; returns the plotted series."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    series = {k: [r[k] for r in records if k in r] for k in keys}
    steps = {k: [r['step'] for r in records if k in r] for k in keys}
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for k in keys:
        if series[k]:
            ax.plot(steps[k], series[k], label=k, lw=1.2)
    ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title(title)
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8)
    save_figure_png(fig, out_png)
    return series
