"""Helpers shared by the metric adapters and ``tools/eval_p3d.py``: the summary tables and the
FROC JSON written next to the metrics."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from terminaltables import AsciiTable

from mmlesion.evaluation.functional.froc import FROCResult
from mmlesion.evaluation.functional.stratify import StratumSensitivity
from mmlesion.utils.fileio import atomic_dump_json

__all__ = ['compress_curve', 'froc_to_dict',
           'froc_table', 'dump_froc_json', 'metric_keys', 'stratum_table', 'strata_to_dict']


def compress_curve(fps: np.ndarray, sens: np.ndarray):
    """The points of a FROC curve that define it as a piecewise-linear function.

    Between two hits sensitivity is flat while FPs grow, so only the points at a hit and just
    before it (plus the first and last) are needed; :func:`interp_sensitivity` on the kept points
    gives the same values as on the full curve.

    Returns:
        ``(fps, sens)`` float64 arrays.
    """
    fps = np.asarray(fps, dtype=np.float64)
    sens = np.asarray(sens, dtype=np.float64)
    n = fps.size
    if n <= 2:
        return fps.copy(), sens.copy()
    change = np.flatnonzero(np.diff(sens) != 0) + 1  # ranks where sensitivity rises
    keep = np.unique(np.concatenate([[0, n - 1], change, change - 1]))
    return fps[keep], sens[keep]


def metric_keys(fp_points: Sequence[float]) -> List[str]:
    """``['AP', 'sens@0.125', ...]``: the keys a FROC metric returns (without prefix)."""
    return ['AP'] + [f'sens@{float(t):g}' for t in fp_points]


def froc_to_dict(result: FROCResult, **extra) -> Dict[str, Any]:
    """JSON-ready summary: ``{"ap", "fps", "sensitivity", counts, "curve": {...}}``.

    ``fps`` are the FP rates at which ``sensitivity`` is read; ``curve`` holds the compressed
    FROC curve (:func:`compress_curve`) for plotting.
    """
    curve_fps, curve_sens = compress_curve(result.curve_fps, result.curve_sens)
    out = dict(
        ap=float(result.ap),
        fps=[float(v) for v in result.fp_points],
        sensitivity=[float(v) for v in result.sensitivity],
        interp=result.interp,
        n_gt=int(result.n_gt),
        fp_denominator=int(result.n_images),  # volumes (P3D, 3D IoU) or images (2D)
        n_detections=int(result.n_dets),
        n_ignored_detections=int(result.n_ignored_dets),
        curve=dict(fps=curve_fps.tolist(), sensitivity=curve_sens.tolist()))
    out.update(extra)
    return out


def dump_froc_json(result: FROCResult, path: str, **extra) -> Dict[str, Any]:
    """Write :func:`froc_to_dict` atomically; returns the dict."""
    data = froc_to_dict(result, **extra)
    atomic_dump_json(data, path, indent=1)
    return data


def froc_table(rows: Dict[str, FROCResult], title: Optional[str] = None,
               unit: str = 'FPs/volume') -> str:
    """An ASCII table, one row per result: AP and sensitivity at each FP rate, plus counts."""
    first = next(iter(rows.values()))
    header = ['', 'AP'] + [f'{float(t):g}' for t in first.fp_points] + ['GT', 'dets', 'set']
    body = [header]
    for name, r in rows.items():
        body.append([name, f'{r.ap:.4f}'] + [f'{s:.4f}' for s in r.sensitivity] +
                    [str(r.n_gt), str(r.n_dets), str(r.n_images)])
    table = AsciiTable(body, title=title)
    table.inner_footing_row_border = False
    return table.table + f'\nsensitivity at {unit} (columns); set = FP denominator'


def stratum_table(strata: Dict[Any, StratumSensitivity], field: str,
                  title: Optional[str] = None, unit: str = 'FPs/volume') -> str:
    """An ASCII table, one row per stratum: sensitivity at the shared FP rates, GT and hits.

    ``hit`` counts the ground truths that any detection hits (the end of the curve).
    """
    first = next(iter(strata.values()))
    header = [field] + [f'{float(t):g}' for t in first.fp_points] + ['GT', 'hit']
    body = [header]
    for label, s in strata.items():
        body.append([str(label)] + [f'{v:.4f}' for v in s.sensitivity] +
                    [str(s.n_gt), str(s.n_hit)])
    table = AsciiTable(body, title=title)
    table.inner_footing_row_border = False
    return table.table + f'\nsensitivity at {unit} (columns), false positives shared by all rows'


def strata_to_dict(strata: Dict[Any, StratumSensitivity]) -> Dict[str, Any]:
    """JSON-ready ``{label: {"n_gt", "n_hit", "fps", "sensitivity"}}``."""
    return {str(label): dict(n_gt=int(s.n_gt), n_hit=int(s.n_hit),
                             fps=[float(v) for v in s.fp_points],
                             sensitivity=[float(v) for v in s.sensitivity])
            for label, s in strata.items()}

