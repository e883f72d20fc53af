"""FROC plots (sensitivity against false positives per volume or image), written atomically."""
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .figures import save_figure_png

__all__ = ['froc_plot_data', 'plot_froc', 'plot_pr']


def froc_plot_data(result: Any) -> Dict[str, Any]:
    """Curve and read-out points of a FROC result.

    Args:
        result: a :class:`~mmlesion.evaluation.functional.FROCResult` or the dict written by
            :func:`~mmlesion.evaluation.metrics.froc_to_dict` / ``tools/eval_p3d.py --json-out``
            (``curve`` optional).

    Returns:
        ``dict(curve_fps, curve_sens, fp_points, sensitivity, ap)`` with numpy arrays.
    """
    if hasattr(result, 'curve_fps'):
        return dict(curve_fps=np.asarray(result.curve_fps, dtype=np.float64),
                    curve_sens=np.asarray(result.curve_sens, dtype=np.float64),
                    fp_points=np.asarray(result.fp_points, dtype=np.float64),
                    sensitivity=np.asarray(result.sensitivity, dtype=np.float64),
                    ap=float(result.ap))
    if isinstance(result, Mapping) and 'fps' in result and 'sensitivity' in result:
        curve = result.get('curve') or {}
        return dict(curve_fps=np.asarray(curve.get('fps', []), dtype=np.float64),
                    curve_sens=np.asarray(curve.get('sensitivity', []), dtype=np.float64),
                    fp_points=np.asarray(result['fps'], dtype=np.float64),
                    sensitivity=np.asarray(result['sensitivity'], dtype=np.float64),
                    ap=float(result.get('ap', float('nan'))))
    raise TypeError('plot_froc: expected a FROCResult or a dict with "fps" and "sensitivity", '
                    f'got {type(result).__name__}')


def plot_froc(curves: Mapping[str, Any], path: str, title: str = 'FROC',
              xlabel: str = 'false positives per volume',
              fp_range: Optional[Tuple[float, float]] = None,
              reference: Optional[Mapping[str, Sequence[Sequence[float]]]] = None,
              dpi: int = 120) -> None:
    """Plot one or more FROC curves on a log2 FP axis and write a PNG atomically.

    Args:
        curves: ``{label: FROCResult or summary dict}``; the legend shows ``label (AP ...)``.
        path: output PNG.
        title: figure title.
        xlabel: FP unit (per volume for P3D / 3D IoU, per image for the 2D metric).
        fp_range: x-axis range; default the span of the read-out FP rates.
        reference: optional published points ``{label: [fps, sensitivities]}`` drawn as
            markers (e.g. the paper's Table III row).
        dpi: resolution.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError('plot_froc needs at least one curve')
    data = {label: froc_plot_data(r) for label, r in curves.items()}
    all_points = np.concatenate([d['fp_points'] for d in data.values()])
    lo, hi = fp_range or (float(all_points.min()), float(all_points.max()))
    fig, ax = plt.subplots(figsize=(5.6, 4.2), dpi=dpi)
    for label, d in data.items():
        name = f'{label} (AP {d["ap"]:.3f})' if np.isfinite(d['ap']) else label
        x, y = d['curve_fps'], d['curve_sens']
        keep = (x > 0) & (x <= hi * 1.05)
        line = None
        if keep.any():
            line, = ax.plot(x[keep], y[keep], lw=1.4, label=name)
        ax.plot(d['fp_points'], d['sensitivity'], 'o', ms=4,
                color=None if line is None else line.get_color(),
                label=None if line is not None else name)
    for label, (fx, fy) in (reference or {}).items():
        ax.plot(fx, fy, 'x', ms=6, mew=1.5, label=label)
    ax.set_xscale('log', base=2)
    ax.set_xlim(lo / 1.2, hi * 1.2)
    ax.set_ylim(0.0, 1.0)
    ticks = [t for t in 2.0 ** np.arange(np.floor(np.log2(lo)), np.ceil(np.log2(hi)) + 1)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f'{t:g}' for t in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel('sensitivity')
    ax.set_title(title)
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8, loc='lower right')
    save_figure_png(fig, path)


def plot_pr(curves: Mapping[str, Any], path: str, title: str = 'precision-recall',
            dpi: int = 120) -> None:
    """Precision against recall of one or more ranked results, written as a PNG atomically.

    Args:
        curves: ``{label: FROCResult}`` (its per-rank ``recall`` and ``precision``); the legend
            shows ``label (AP ...)``.
        path: output PNG.
        title: figure title.
        dpi: resolution.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError('plot_pr needs at least one curve')
    fig, ax = plt.subplots(figsize=(5.0, 4.2), dpi=dpi)
    for label, r in curves.items():
        if not hasattr(r, 'precision'):
            raise TypeError(f'plot_pr: {label!r} is not a FROCResult')
        recall = np.concatenate([[0.0], np.asarray(r.recall, dtype=np.float64)])
        precision = np.asarray(r.precision, dtype=np.float64)
        precision = np.concatenate([[precision[0] if precision.size else 1.0], precision])
        ax.step(recall, precision, where='post', lw=1.4, label=f'{label} (AP {r.ap:.3f})')
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel('recall (sensitivity)')
    ax.set_ylabel('precision')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower left')
    save_figure_png(fig, path)
