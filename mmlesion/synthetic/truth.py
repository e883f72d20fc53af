"""Reading the generator's complete ground truth (``ground_truth/truth.json``) for evaluation.

The Lesion Harvester pickles the generator writes (``Revised-*``, ``RECIST-Box-*``) hold boxes
only.  ``truth.json`` knows more about each lesion (``origin`` real/synthetic in the real-anatomy
mode, ``organ``, ``kind``, ``marked``, diameters); :func:`lesion_values` lines those attributes up
with an annotation set's ground truth so a FROC result can be stratified by them
(:func:`mmlesion.evaluation.functional.sensitivity_by_stratum`).
"""
import json
import os
from typing import Any, Dict, Mapping, Optional

import numpy as np

__all__ = ['load_truth', 'lesion_values', 'TRUTH_BOX_TOLERANCE_PX']

# the pickles round box corners to 3 decimals
TRUTH_BOX_TOLERANCE_PX = 2e-3


def load_truth(path) -> dict:
    """``truth.json`` (``{"info", "volumes"}``) as a dict; a clear error if it is not one."""
    path = os.fspath(path)
    with open(path) as f:
        truth = json.load(f)
    if not isinstance(truth, dict) or not isinstance(truth.get('volumes'), list):
        raise ValueError(f'{path}: not a truth.json of the synthetic generator '
                         '(expected an object with a "volumes" list)')
    return truth


def _field(lesion: dict, field: str, default: Any) -> Any:
    value = lesion.get(field, default)
    return default if value is None else value


def lesion_values(truth: Mapping, boxes_2d: Mapping[str, np.ndarray], field: str,
                  default: Any = 'n/a', path: Optional[str] = None) -> Dict[str, list]:
    """A lesion attribute for every ground truth of an annotation set, in its order.

    Args:
        truth: ``truth.json`` contents (:func:`load_truth`).
        boxes_2d: the annotation set's ground truth, ``{key: (n, 5) [z, x1, y1, x2, y2]}`` in
            mmlesion's frame (0-based x/y, absolute slice z), as
            :class:`~mmlesion.structures.AnnotationSet` holds it.
        field: a lesion field of ``truth.json`` (``origin``, ``organ``, ``kind``, ``marked``,
            ``lesion_type``, ...).
        default: value for lesions without the field (phantom lesions have no ``origin``).
        path: named in errors.

    Returns:
        ``{key: [value of GT 0, value of GT 1, ...]}`` for every key of ``boxes_2d``.

    Raises:
        ValueError: a volume of the annotation set is not in ``truth`` or one of its boxes is
            not a lesion's key-slice box there (the files come from different datasets).
    """
    where = path or 'truth.json'
    by_key = {v['key']: v for v in truth['volumes']}
    out = {}
    for key, rows in boxes_2d.items():
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        vol = by_key.get(key)
        if vol is None:
            raise ValueError(f'{where}: no volume {key!r}; the annotation set and truth.json '
                             'come from different datasets')
        lesions = vol['lesions']
        cand_z = np.array([les['key_slice'] for les in lesions], dtype=np.float64)
        cand_box = np.array([les['box2d'] for les in lesions], dtype=np.float64).reshape(-1, 4)
        used = np.zeros(len(lesions), dtype=bool)
        values = []
        for i, (z, *box) in enumerate(rows):
            match = np.flatnonzero(
                ~used & (cand_z == z) &
                np.all(np.abs(cand_box - np.asarray(box)) <= TRUTH_BOX_TOLERANCE_PX, axis=1))
            if match.size == 0:
                raise ValueError(f'{where}: volume {key!r} has no lesion with key slice {z:g} '
                                 f'and box {np.round(box, 3).tolist()} (ground truth {i})')
            used[match[0]] = True
            values.append(_field(lesions[match[0]], field, default))
        out[key] = values
    return out
