"""``tools/eval_p3d.py``: P3D of a detection file against an annotation file, offline.

    tools/eval_p3d.py --ann Revised-Test1071.pkl --det detections.pkl \
        [--json-out froc.json] [--plot froc.png] [--pr-plot pr.png] [--interp extrapolate|clamp]
        [--by size|lesion_type|FIELD [--truth ground_truth/truth.json]]
    tools/eval_p3d.py --ann vd_test.json --det mscn=a.pkl mscn_hnsl=b.pkl --plot froc.png

``--ann``: a Lesion Harvester 2D pickle (``Revised-*``, ``RECIST-Box-*``), ``3D-Box.pkl`` or the
LENS release (3D boxes -> one 2D box on the slice nearest the z centre), or mmlesion JSON (its
``volumes`` are the annotation set, volumes without boxes included).  ``--det``: detections in
the Lesion Harvester format ``{volume: [[(z, [x1, y1, x2, y2, score]), ...], ...]}`` with
relative z and 1-based x/y (``tools/test.py --out`` writes it; the authors' files have it),
``.pkl`` (restricted unpickler; numpy 1 or 2 pickles) or ``.json``.  Everything is converted to
mmlesion's frame before scoring, by the same code path as :class:`~mmlesion.evaluation.P3DMetric`.

Several ``--det NAME=FILE`` give one table (a row per detector, with the mean sensitivity over
the table's FP points), one FROC plot with every curve and one precision-recall plot.  When most
tracklets of a file fall on volumes that are not in ``--ann`` (another set, another key form),
that is an error naming examples of both (``--allow-partial`` scores them anyway).

``--by FIELD`` adds sensitivity per value of a lesion attribute, read on the detector's shared
FP axis: ``size`` (the RECIST long axis in mm, binned <10 / 10-30 / >=30 mm as 3DCE and MULAN),
``lesion_type`` (DL_info's coarse type) or any scalar field of the lesions.  The attributes come
from ``--truth`` (the synthetic generator's ``truth.json``: ``origin``, ``organ``, ``kind``,
``marked``, ...) or else from ``--ann`` when it is mmlesion JSON (its annotations' fields).  An
unknown field is an error listing the fields that exist; a vector field is refused.
"""
import argparse
import json
import os.path as osp
import pickle
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmlesion.evaluation.annotation_set import ANN_FORMATS, load_annotation_set
from mmlesion.evaluation.detection_io import FRAMES, load_lh_detections
from mmlesion.evaluation.functional.froc import INTERP_MODES, P3D_FP_POINTS, FROCResult
from mmlesion.evaluation.functional.stratify import (
    align_gt_values,
    sensitivity_by_stratum,
    strata_from_records,
)
from mmlesion.evaluation.metrics.p3d_metric import evaluate_p3d_on_set
from mmlesion.evaluation.metrics.utils import (
    froc_to_dict,
    strata_to_dict,
    stratum_table,
)
from mmlesion.structures.volume import AnnotationSet
from mmlesion.utils.fileio import atomic_dump_json

from .errors import add_debug_argument

# more than this fraction of a file's tracklets on volumes outside --ann: an error
PARTIAL_LIMIT = 0.5

__all__ = ['parse_args', 'evaluate_files', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='P3D (Lesion Harvester) FROC and AP of 3D detections (tracklets)')
    p.add_argument('--ann', required=True,
                   help='ground truth: LH / LENS pickle or mmlesion JSON (completely annotated)')
    p.add_argument('--det', required=True, nargs='+', metavar='[NAME=]FILE',
                   help='detections in the Lesion Harvester format (.pkl or .json); several '
                   'NAME=FILE compare detectors in one table and one plot')
    p.add_argument('--json-out', help='write {"ap", "fps", "sensitivity", ...} here (several '
                   '--det: {"detectors": {NAME: ...}})')
    p.add_argument('--plot', help='write the FROC curve(s) as PNG here')
    p.add_argument('--pr-plot', help='write the precision-recall curve(s) as PNG here')
    p.add_argument('--interp', choices=INTERP_MODES, default='extrapolate',
                   help='sensitivity between/beyond curve points: extrapolate (3DCE, Lesion '
                   'Harvester; default) or clamp (MULAN)')
    p.add_argument('--iou-thr', type=float, default=0.5, help='2D IoU on the GT slice (0.5)')
    p.add_argument('--fp-points', type=float, nargs='+', default=list(P3D_FP_POINTS),
                   help='FPs per volume to report (default 0.125 ... 16); the mean column '
                   'averages the sensitivity at these')
    p.add_argument('--ann-format', choices=ANN_FORMATS, default='auto',
                   help='format of --ann (default auto: from the file name and contents)')
    p.add_argument('--lens-subset', choices=('val', 'test'), default=None,
                   help='LENS release subset (default both)')
    p.add_argument('--det-frame', choices=FRAMES, default='lh',
                   help='frame of --det: lh (relative z, 1-based x/y; the format\'s definition) '
                   'or mmlesion (absolute z, 0-based)')
    p.add_argument('--label', default='P3D',
                   help='name of a --det FILE given without NAME= when it is the only one')
    p.add_argument('--truth', help="the synthetic generator's ground_truth/truth.json: the "
                   'lesion attributes for --by')
    p.add_argument('--by', metavar='FIELD',
                   help='also report sensitivity per value of a lesion attribute: size (RECIST '
                   'long axis, <10 / 10-30 / >=30 mm), lesion_type (DL_info coarse type) or a '
                   'field of the --ann JSON annotations or of --truth (origin, organ, ...)')
    p.add_argument('--allow-partial', action='store_true',
                   help='score even when most tracklets are on volumes that are not in --ann')
    add_debug_argument(p)
    return p.parse_args(argv)


class _UsageError(ValueError):
    """A combination of options that cannot work (exit status 2)."""


def det_specs(items: List[str], label: str = 'P3D') -> List[Tuple[str, str]]:
    """``[NAME=]FILE`` items -> ``[(name, file)]``; an unnamed file is ``label`` when it is the
    only one, else its file name without extension."""
    specs = []
    for item in items:
        if '=' in item and not osp.exists(item):
            name, path = item.split('=', 1)
        else:
            name = label if len(items) == 1 else osp.splitext(osp.basename(item))[0]
            path = item
        specs.append((name, path))
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise _UsageError(f'--det: give each file its own NAME= (names {names})')
    return specs


def evaluate_files(ann_file: str, det_file: str, *, iou_thr: float = 0.5,
                   fp_points=P3D_FP_POINTS, interp: str = 'extrapolate',
                   ann_format: str = 'auto', lens_subset: Optional[str] = None,
                   det_frame: str = 'lh') -> Tuple[FROCResult, AnnotationSet]:
    """P3D of ``det_file`` against ``ann_file``; returns the result and the annotation set."""
    ann = load_annotation_set(ann_file, ann_format, lens_subset)
    detections = load_lh_detections(det_file, frame='mmlesion', file_frame=det_frame)
    result = evaluate_p3d_on_set(ann, detections, iou_thr=iou_thr, fp_points=fp_points,
                                 interp=interp)
    return result, ann


def check_overlap(results: Dict[str, FROCResult], ann: AnnotationSet,
                  limit: float = PARTIAL_LIMIT) -> None:
    """Raise ValueError when more than ``limit`` of a file's tracklets are on volumes outside
    the annotation set, naming examples of both key sets."""
    for name, r in results.items():
        total = r.n_dets + r.n_ignored_dets
        if total and r.n_ignored_dets > limit * total:
            raise ValueError(
                f'--det {name}: {r.n_ignored_dets} of {total} tracklets are on volumes that are '
                f'not in --ann, e.g. {r.ignored_keys[:3]}; --ann has {len(ann.volumes)} '
                f'volumes, e.g. {list(ann.volumes)[:3]}.  Same set, same key form?  '
                '--allow-partial scores the tracklets on its volumes anyway')


_NOT_ATTRIBUTES = {'id', 'image_id', 'category_id', 'area', 'iscrowd', 'bbox', 'bbox_3d',
                   'segmentation'}


def _truth_records(truth_path: str, ann: AnnotationSet) -> Dict[str, List[dict]]:
    from mmlesion.synthetic.truth import lesion_values, load_truth
    truth = load_truth(truth_path)
    ids = lesion_values(truth, ann.boxes_2d, 'id', path=truth_path)
    by_key = {v['key']: {les['id']: les for les in v['lesions']} for v in truth['volumes']}
    out = {}
    for key, lesion_ids in ids.items():
        recs = []
        for i in lesion_ids:
            rec = dict(by_key[key][i])
            diam = rec.get('diameters_mm')
            rec['long_axis_mm'] = float(diam[0]) if diam else None
            recs.append(rec)
        out[key] = recs
    return out


def _json_records(path: str, ann: AnnotationSet) -> Dict[str, List[dict]]:
    """The attributes of the JSON's lesions, in the annotation set's ground-truth order."""
    from mmlesion.structures import normalize_key
    with open(path) as f:
        coco = json.load(f)
    images = {im['id']: im for im in coco['images']}
    out: Dict[str, List[dict]] = {k: [] for k in ann.boxes_2d}
    for a in coco['annotations']:
        if a.get('hard_negative', False) or a.get('iscrowd', 0) or a.get('noisy', False):
            continue  # as load_annotation_set (drop_noisy)
        im = images[a['image_id']]
        rec = {k: v for k, v in a.items() if k not in _NOT_ATTRIBUTES}
        diam, spacing = a.get('diameters_px'), im.get('spacing')
        rec['long_axis_mm'] = (float(diam[0]) * float(spacing[0])
                               if diam and spacing and spacing[0] else None)
        out.setdefault(normalize_key(im['volume_id']), []).append(rec)
    for key, boxes in ann.boxes_2d.items():
        if len(out.get(key, [])) != len(boxes):
            raise ValueError(f'{path}: cannot line up the annotations of {key!r} with its '
                             'ground truth')
    return out


def lesion_records(ann: AnnotationSet, ann_file: str, truth: Optional[str]
                   ) -> Dict[str, List[dict]]:
    """``{key: [attributes of GT 0, ...]}`` from ``truth`` or the JSON ``ann_file``."""
    if truth:
        return _truth_records(truth, ann)
    if ann.fmt != 'json':
        raise _UsageError(
            f'--by needs the lesions\' attributes, and {ann_file} holds boxes only.  Give the '
            'set as mmlesion JSON (tools/import_annotations.py --pkl FILE --dl-info '
            'DL_info.csv adds lesion type and size), or --truth ground_truth/truth.json for '
            'synthetic data')
    return _json_records(ann_file, ann)


def strata_of(result: FROCResult, records: Dict[str, List[dict]], field: str, where: str):
    per_gt = align_gt_values(result, records)
    try:
        labels = strata_from_records(list(per_gt), field, where)
    except ValueError as e:
        raise _UsageError(str(e)) from None
    return sensitivity_by_stratum(result, labels)


def results_table(results: Dict[str, FROCResult], title: str,
                  unit: str = 'FPs/volume') -> str:
    """One row per detector: AP, sensitivity at each FP rate, their mean, counts."""
    from terminaltables import AsciiTable
    first = next(iter(results.values()))
    fps = [f'{float(t):g}' for t in first.fp_points]
    body = [['', 'AP'] + fps + ['mean', 'GT', 'dets', 'set']]
    for name, r in results.items():
        body.append([name, f'{r.ap:.4f}'] + [f'{s:.4f}' for s in r.sensitivity] +
                    [f'{float(np.mean(r.sensitivity)):.4f}', str(r.n_gt), str(r.n_dets),
                     str(r.n_images)])
    table = AsciiTable(body, title=title)
    table.inner_footing_row_border = False
    return (table.table + f'\nsensitivity at {unit} (columns); mean = mean sensitivity at '
            f'{", ".join(fps)} {unit}; set = FP denominator')


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the evaluation; returns ``{"ap", "fps", "sensitivity", ...}`` (several ``--det``:
    ``{"detectors": {name: {...}}, ...}``).

    Raises:
        SystemExit: status 1 for unreadable or malformed inputs and sets that do not match,
            status 2 for options that cannot work together, after printing the reason.
    """
    args = parse_args(argv)
    if args.truth and not args.by:
        print('error: --truth gives the lesion attributes for --by: give --by FIELD too',
              file=sys.stderr)
        raise SystemExit(2)
    try:
        specs = det_specs(args.det, args.label)
        ann = load_annotation_set(args.ann, args.ann_format, args.lens_subset)
        results: Dict[str, FROCResult] = {}
        for name, path in specs:
            detections = load_lh_detections(path, frame='mmlesion', file_frame=args.det_frame)
            results[name] = evaluate_p3d_on_set(ann, detections, iou_thr=args.iou_thr,
                                                fp_points=args.fp_points, interp=args.interp)
        if not args.allow_partial:
            check_overlap(results, ann)
        strata = {}
        if args.by:
            records = lesion_records(ann, args.ann, args.truth)
            where = f'the lesions of {args.truth or args.ann}'
            strata = {name: strata_of(r, records, args.by, where)
                      for name, r in results.items()}
    except (ValueError, KeyError, FileNotFoundError, pickle.UnpicklingError) as e:
        if args.debug:
            raise
        print(f'error: {e}\n  (add --debug for the full traceback)', file=sys.stderr)
        raise SystemExit(2 if isinstance(e, _UsageError) else 1) from None
    print(results_table(results, title=f'P3D (IoU >= {args.iou_thr:g}, {args.interp})'))
    fps = ', '.join(f'{t:g}' for t in args.fp_points)
    for name, r in results.items():
        who = '' if len(results) == 1 else f'{name}: '
        print(f'{who}{len(ann.volumes)} volumes, {r.n_gt} lesions, {r.n_dets} tracklets')
        if r.n_ignored_dets:
            print(f'warning: {who}{r.n_ignored_dets} tracklets on {len(r.ignored_keys)} volumes '
                  f'outside the annotation set were ignored, e.g. {r.ignored_keys[:3]}',
                  file=sys.stderr)
        sens = ', '.join(f'{s:.4f}' for s in r.sensitivity)
        print(f'{who}AP {r.ap:.4f}; sensitivity @ [{fps}] FPs/volume = [{sens}]')
    summaries = {}
    for name, r in results.items():
        extra = dict(det=dict(specs)[name], mean_sensitivity=float(np.mean(r.sensitivity)))
        if args.by:
            title = f'P3D by {args.by}' + ('' if len(results) == 1 else f': {name}')
            print(stratum_table(strata[name], args.by, title=title))
            extra.update(by=args.by, strata=strata_to_dict(strata[name]))
        summaries[name] = froc_to_dict(r, **extra)
    if len(results) == 1:
        summary = dict(next(iter(summaries.values())), ann=args.ann, iou_thr=args.iou_thr)
    else:
        summary = dict(ann=args.ann, iou_thr=args.iou_thr, detectors=summaries)
    if args.json_out:
        atomic_dump_json(summary, args.json_out, indent=1)
        print(f'wrote {args.json_out}')
    n_gt = next(iter(results.values())).n_gt
    if args.plot:
        from mmlesion.visualization.froc import plot_froc
        plot_froc(results, args.plot,
                  title=f'P3D FROC ({len(ann.volumes)} volumes, {n_gt} lesions)')
        print(f'wrote {args.plot}')
    if args.pr_plot:
        from mmlesion.visualization.froc import plot_pr
        plot_pr(results, args.pr_plot,
                title=f'P3D precision-recall ({len(ann.volumes)} volumes, {n_gt} lesions)')
        print(f'wrote {args.pr_plot}')
    return summary


if __name__ == '__main__':
    main()
