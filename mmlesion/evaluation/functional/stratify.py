"""Sensitivity stratified by lesion size or type, with false positives shared by all strata.

A FROC result ranks all detections once; the FP axis (FPs per image/volume) belongs to the whole
detector, because a false positive cannot be attributed to a lesion size or type.  A stratum's
sensitivity after each rank is (ground truths of the stratum first hit so far) / (ground truths
of the stratum), read at the requested FP rates on the *shared* FP curve.  Hence the
GT-count-weighted mean of the strata's curves equals the overall curve at every rank.

Strata are given per ground truth, aligned with the result's flattened ground-truth order
(``FROCResult.gt_image`` / ``gt_index``); :func:`align_gt_values` builds such an array from
per-volume lists.
"""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from .froc import FROCResult, interp_sensitivity

__all__ = ['StratumSensitivity', 'sensitivity_by_stratum', 'size_strata', 'box_long_side',
           'align_gt_values', 'DEFAULT_SIZE_EDGES_MM', 'LESION_TYPES', 'strata_from_records',
           'lesion_fields', 'SIZE_FIELD', 'TYPE_FIELD']

DEFAULT_SIZE_EDGES_MM = (10.0, 30.0)
# DeepLesion Coarse_lesion_type codes (-1: unknown, the training split)
LESION_TYPES = {1: 'bone', 2: 'abdomen', 3: 'mediastinum', 4: 'liver', 5: 'lung', 6: 'kidney',
                7: 'soft tissue', 8: 'pelvis', -1: 'unknown'}


@dataclass
class StratumSensitivity:
    label: Any
    n_gt: int
    n_hit: int  # ground truths hit by any detection (the curve's end)
    fp_points: np.ndarray  # (m,) shared FPs per image/volume
    sensitivity: np.ndarray  # (m,)
    curve_sens: np.ndarray  # (n_dets,) after each rank, on the shared result.curve_fps


def sensitivity_by_stratum(result: FROCResult, strata: Sequence[Any],
                           fp_points: Optional[Sequence[float]] = None,
                           interp: Optional[str] = None) -> Dict[Any, StratumSensitivity]:
    """Per-stratum sensitivity at shared FP rates.

    Args:
        result: any :class:`FROCResult` (P3D, 2D RECIST, 3D IoU).
        strata: ``(n_gt,)`` label of each ground truth in the result's flattened GT order.
        fp_points: FP rates (default: the result's).
        interp: interpolation mode (default: the result's).

    Returns:
        ``{label: StratumSensitivity}`` in sorted label order.
    """
    strata = np.asarray(strata)
    if strata.shape != (result.n_gt,):
        raise ValueError(f'need one stratum label per ground truth: {result.n_gt} ground truths, '
                         f'got labels of shape {strata.shape}')
    fp_points = np.asarray(result.fp_points if fp_points is None else fp_points, dtype=np.float64)
    interp = interp or result.interp
    n = result.n_dets
    first = result.gt_first_hit_rank
    out = {}
    for label in np.unique(strata):
        sel = strata == label
        hit_ranks = first[sel & (first >= 0)]
        tps = np.cumsum(np.bincount(hit_ranks, minlength=n)[:n])
        n_gt = int(sel.sum())
        curve = tps / float(n_gt)
        key = label.item() if hasattr(label, 'item') else label
        out[key] = StratumSensitivity(
            label=key, n_gt=n_gt, n_hit=int(hit_ranks.size), fp_points=fp_points,
            sensitivity=interp_sensitivity(result.curve_fps, curve, fp_points, interp),
            curve_sens=curve)
    return out


def size_strata(sizes: Sequence[float], edges: Sequence[float] = DEFAULT_SIZE_EDGES_MM,
                unit: str = 'mm') -> np.ndarray:
    """Bin sizes into labelled strata: edges (10, 30) -> ``'<10mm'``, ``'10-30mm'``, ``'>=30mm'``.

    A size equal to an edge goes to the upper bin.  Non-finite sizes get ``'unknown'``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f'edges must be a strictly increasing 1D sequence, got {edges.tolist()}')
    fmt = [f'{e:g}' for e in edges]
    names = ([f'<{fmt[0]}{unit}'] + [f'{a}-{b}{unit}' for a, b in zip(fmt[:-1], fmt[1:])] +
             [f'>={fmt[-1]}{unit}'])
    idx = np.searchsorted(edges, sizes, side='right')
    labels = np.array(names, dtype=object)[np.clip(idx, 0, len(names) - 1)]
    labels[~np.isfinite(sizes)] = 'unknown'
    return labels


def box_long_side(boxes, spacing_xy_mm: Optional[Any] = None, pad_px: float = 0.0,
                  plus_one: bool = False) -> np.ndarray:
    """Long side of ``(n, >=4)`` boxes, a proxy for the lesion's long diameter.

    Args:
        boxes: ``[x1, y1, x2, y2]`` in pixels.
        spacing_xy_mm: ``None`` -> pixels; a scalar, an ``(x, y)`` pair, or ``(n, 2)`` per-box
            pixel spacing -> millimetres.
        pad_px: padding added on every side when the box was made (DeepLesion RECIST boxes: 5),
            removed before measuring.
        plus_one: inclusive-pixel widths.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros(0)
    b = b[None] if b.ndim == 1 else b
    if b.ndim != 2 or b.shape[1] < 4:
        raise ValueError(f'boxes must be (n, >=4) [x1, y1, x2, y2], got shape {b.shape}')
    extra = 1.0 if plus_one else 0.0
    w = np.maximum(b[:, 2] - b[:, 0] + extra - 2 * pad_px, 0.0)
    h = np.maximum(b[:, 3] - b[:, 1] + extra - 2 * pad_px, 0.0)
    if spacing_xy_mm is None:
        return np.maximum(w, h)
    sp = np.asarray(spacing_xy_mm, dtype=np.float64)
    if sp.ndim == 0:
        sx = sy = sp
    elif sp.ndim == 1 and sp.size == 2:
        sx, sy = sp
    elif sp.shape == (b.shape[0], 2):
        sx, sy = sp[:, 0], sp[:, 1]
    else:
        raise ValueError(f'spacing_xy_mm must be a scalar, (x, y) or ({b.shape[0]}, 2), '
                         f'got shape {sp.shape}')
    return np.maximum(w * sx, h * sy)


def align_gt_values(result: FROCResult, values: Mapping[Any, Sequence[Any]],
                    default: Any = None) -> np.ndarray:
    """Per-ground-truth values in the result's flattened GT order.

    Args:
        result: a result carrying ``image_keys``, ``gt_image`` and ``gt_index``.
        values: ``{key: [value of GT 0, value of GT 1, ...]}`` in the order the ground truth of
            that key was given to the metric.  Keys may carry ``.annot``.
        default: value for keys missing from ``values``; ``None`` -> missing keys are an error.

    Returns:
        ``(n_gt,)`` object array.
    """
    if result.gt_image is None or result.gt_index is None:
        raise ValueError('this result carries no ground-truth mapping')
    norm = {}
    for k, v in values.items():
        ks = str(k)
        norm[ks[:-6] if ks.endswith('.annot') else k] = v
    out = np.empty(result.n_gt, dtype=object)
    for g, (img, idx) in enumerate(zip(result.gt_image, result.gt_index)):
        key = result.image_keys[img]
        if key not in norm:
            if default is None:
                raise ValueError(f'no stratum values for {key!r}')
            out[g] = default
            continue
        vals = norm[key]
        if idx >= len(vals):
            raise ValueError(f'{key!r}: {len(vals)} stratum values for at least {idx + 1} '
                             'ground truths')
        out[g] = vals[idx]
    return out


# --------------------------------------------------------------- strata from lesion records
SIZE_FIELD = 'size'  # RECIST long axis in mm, binned at DEFAULT_SIZE_EDGES_MM (3DCE / MULAN)
TYPE_FIELD = 'lesion_type'  # DL_info's Coarse_lesion_type, by name
DERIVED_FIELDS = (SIZE_FIELD, TYPE_FIELD)
# a numeric field with more distinct values than this is binned at its quartiles
MAX_CATEGORIES = 12


def lesion_fields(records: Sequence[Mapping]) -> list:
    """Fields ``--by`` can use on these lesion records: the derived ones, then every key that
    holds a scalar (or None) in some record."""
    keys = set()
    for rec in records:
        keys.update(k for k, v in rec.items()
                    if v is None or isinstance(v, (str, bool, int, float, np.generic)))
    keys.discard('long_axis_mm')
    return list(DERIVED_FIELDS) + sorted(keys - set(DERIVED_FIELDS))


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
               for v in values if v is not None)


def strata_from_records(records: Sequence[Mapping], field: str, where: str = 'the lesions'
                        ) -> np.ndarray:
    """One stratum label per lesion record for ``--by field``.

    ``size``: the RECIST long axis in mm (``long_axis_mm`` of the record) binned ``<10mm``,
    ``10-30mm``, ``>=30mm`` (3DCE / MULAN), ``unknown`` without one.  ``lesion_type``: DL_info's
    coarse type code as a name (:data:`LESION_TYPES`).  Any other field: its values; a numeric
    field with more than :data:`MAX_CATEGORIES` distinct values is binned at its quartiles.

    Raises:
        ValueError: the field is in no record (the message lists the fields that exist), or it
            holds lists / objects (a vector cannot label a stratum).
    """
    if field == SIZE_FIELD:
        sizes = [rec.get('long_axis_mm') for rec in records]
        sizes = [np.nan if s is None else float(s) for s in sizes]
        return size_strata(sizes)
    if field == TYPE_FIELD:
        return np.array([LESION_TYPES.get(rec.get(TYPE_FIELD), 'unknown')
                         if rec.get(TYPE_FIELD) is not None else 'unknown'
                         for rec in records], dtype=object)
    if not any(field in rec for rec in records):
        raise ValueError(f'no field {field!r} in {where}; fields that exist: '
                         f'{", ".join(lesion_fields(records))}')
    values = [rec.get(field) for rec in records]
    vector = next((v for v in values if isinstance(v, (list, tuple, dict, np.ndarray))), None)
    if vector is not None:
        hint = (' (for the lesion size give --by size: the RECIST long axis in mm, binned '
                '<10 / 10-30 / >=30 mm)') if 'diameter' in field or 'radii' in field else ''
        raise ValueError(f'field {field!r} holds vectors, e.g. {vector!r}: a stratum needs one '
                         f'value per lesion{hint}')
    present = [v for v in values if v is not None]
    if _numeric(present) and len(set(present)) > MAX_CATEGORIES:
        edges = np.unique(np.quantile(np.asarray(present, dtype=np.float64), [0.25, 0.5, 0.75]))
        return size_strata([np.nan if v is None else float(v) for v in values], edges, unit='')
    labels = ['n/a' if v is None else v for v in values]
    if len({type(v) for v in labels}) > 1:  # e.g. True / False / 'n/a': sortable as text
        labels = [str(v) for v in labels]
    return np.array(labels, dtype=object)
