"""``tools/eval_p3d.py``: P3D of a detection file against an annotation file, offline.

    python tools/eval_p3d.py --ann Revised-Test1071.pkl --det detections.pkl \
        [--json-out froc.json] [--plot froc.png] [--interp extrapolate|clamp] \
        [--truth ground_truth/truth.json --by origin]

``--ann``: a Lesion Harvester 2D pickle (``Revised-*``, ``RECIST-Box-*``), ``3D-Box.pkl`` or the
LENS release (3D boxes -> one 2D box on the slice nearest the z centre), or mmlesion JSON (its
``volumes`` are the annotation set, volumes without boxes included).  ``--det``: detections in
the Lesion Harvester format ``{volume: [[(z, [x1, y1, x2, y2, score]), ...], ...]}`` with
relative z and 1-based x/y (``tools/test.py --out`` writes it; the authors' files have it),
``.pkl`` (restricted unpickler; numpy 1 or 2 pickles) or ``.json``.  Everything is converted to
mmlesion's frame before scoring, by the same code path as :class:`~mmlesion.evaluation.P3DMetric`.

``--truth`` (the synthetic generator's ``truth.json``) with ``--by FIELD`` adds sensitivity per
value of a lesion field (``origin``: real vs synthetic lesions of the real-anatomy data,
``organ``, ``kind``, ``marked``), read on the detector's shared FP axis.
"""
import argparse
import pickle
import sys
from typing import List, Optional, Tuple

from mmlesion.evaluation.annotation_set import ANN_FORMATS, load_annotation_set
from mmlesion.evaluation.detection_io import FRAMES, load_lh_detections
from mmlesion.evaluation.functional.froc import INTERP_MODES, P3D_FP_POINTS, FROCResult
from mmlesion.evaluation.functional.stratify import align_gt_values, sensitivity_by_stratum
from mmlesion.evaluation.metrics.p3d_metric import evaluate_p3d_on_set
from mmlesion.evaluation.metrics.utils import (
    dump_froc_json,
    froc_table,
    froc_to_dict,
    strata_to_dict,
    stratum_table,
)
from mmlesion.structures.volume import AnnotationSet

from .errors import add_debug_argument

__all__ = ['parse_args', 'evaluate_files', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='P3D (Lesion Harvester) FROC and AP of 3D detections (tracklets)')
    p.add_argument('--ann', required=True,
                   help='ground truth: LH / LENS pickle or mmlesion JSON (completely annotated)')
    p.add_argument('--det', required=True,
                   help='detections in the Lesion Harvester format (.pkl or .json)')
    p.add_argument('--json-out', help='write {"ap", "fps", "sensitivity", ...} here')
    p.add_argument('--plot', help='write the FROC curve as PNG here')
    p.add_argument('--interp', choices=INTERP_MODES, default='extrapolate',
                   help='sensitivity between/beyond curve points: extrapolate (3DCE, Lesion '
                   'Harvester; default) or clamp (MULAN)')
    p.add_argument('--iou-thr', type=float, default=0.5, help='2D IoU on the GT slice (0.5)')
    p.add_argument('--fp-points', type=float, nargs='+', default=list(P3D_FP_POINTS),
                   help='FPs per volume to report (default 0.125 ... 16)')
    p.add_argument('--ann-format', choices=ANN_FORMATS, default='auto',
                   help='format of --ann (default auto: from the file name and contents)')
    p.add_argument('--lens-subset', choices=('val', 'test'), default=None,
                   help='LENS release subset (default both)')
    p.add_argument('--det-frame', choices=FRAMES, default='lh',
                   help='frame of --det: lh (relative z, 1-based x/y; the format\'s definition) '
                   'or mmlesion (absolute z, 0-based)')
    p.add_argument('--label', default='P3D', help='legend label of the plot')
    p.add_argument('--truth', help="the synthetic generator's ground_truth/truth.json, for --by")
    add_debug_argument(p)
    p.add_argument('--by', metavar='FIELD',
                   help='also report sensitivity per value of this truth.json lesion field '
                   '(origin, organ, kind, marked, ...); needs --truth')
    return p.parse_args(argv)


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


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the evaluation; returns ``{"ap", "fps", "sensitivity", ...}``.

    Raises:
        SystemExit: (status 1) for unreadable or malformed inputs, after printing the reason.
    """
    args = parse_args(argv)
    if bool(args.truth) != bool(args.by):
        print('error: --truth and --by go together', file=sys.stderr)
        raise SystemExit(2)
    try:
        result, ann = evaluate_files(
            args.ann, args.det, iou_thr=args.iou_thr, fp_points=args.fp_points,
            interp=args.interp, ann_format=args.ann_format, lens_subset=args.lens_subset,
            det_frame=args.det_frame)
        strata = None
        if args.by:
            from mmlesion.synthetic.truth import lesion_values, load_truth
            values = lesion_values(load_truth(args.truth), ann.boxes_2d, args.by,
                                   path=args.truth)
            strata = sensitivity_by_stratum(result, align_gt_values(result, values))
    except (ValueError, KeyError, FileNotFoundError, pickle.UnpicklingError) as e:
        if args.debug:
            raise
        print(f'error: {e}\n  (add --debug for the full traceback)', file=sys.stderr)
        raise SystemExit(1) from None
    print(froc_table({args.label: result},
                     title=f'P3D (IoU >= {args.iou_thr:g}, {args.interp})'))
    print(f'{len(ann.volumes)} volumes, {result.n_gt} lesions, {result.n_dets} tracklets')
    if result.n_ignored_dets:
        print(f'warning: {result.n_ignored_dets} tracklets on {len(result.ignored_keys)} '
              f'volumes outside the annotation set were ignored, e.g. {result.ignored_keys[:3]}',
              file=sys.stderr)
    sens = ', '.join(f'{s:.4f}' for s in result.sensitivity)
    fps = ', '.join(f'{t:g}' for t in result.fp_points)
    print(f'AP {result.ap:.4f}; sensitivity @ [{fps}] FPs/volume = [{sens}]')
    summary = dict(ann=args.ann, det=args.det, iou_thr=args.iou_thr)
    if strata is not None:
        print(stratum_table(strata, args.by, title=f'P3D by {args.by}'))
        summary.update(by=args.by, strata=strata_to_dict(strata))
    if args.json_out:
        summary = dump_froc_json(result, args.json_out, **summary)
        print(f'wrote {args.json_out}')
    else:
        summary = froc_to_dict(result, **summary)
    if args.plot:
        from mmlesion.visualization.froc import plot_froc
        plot_froc({args.label: result}, args.plot,
                  title=f'P3D FROC ({len(ann.volumes)} volumes, {result.n_gt} lesions)')
        print(f'wrote {args.plot}')
    return summary


if __name__ == '__main__':
    main()
