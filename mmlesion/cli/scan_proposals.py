"""``tools/scan_proposals.py``: scan sub-volumes with a detector and write their 3D proposals.

    python tools/scan_proposals.py CONFIG CHECKPOINT --ann ANN --image-root Images_png \
        --out proposals.json [--label-complete FILE] [--label-recist FILE] \
        [--trust-checkpoint] [--score-thr 0.1] [--series-info DL_info.csv] [--device cpu]

The volumes of ``--ann`` (any annotation file :func:`~mmlesion.evaluation.load_annotation_set`
reads: mmlesion JSON, ``Revised-*.pkl``, ...) are scanned by
:func:`~mmlesion.apis.predict_volumes` -- every slice, stacked with t_G = ``--score-thr`` --
and their proposals written as a proposal file (docs/proposals.md).  Labels, by the P3D hit rule
(:mod:`mmlesion.evaluation.functional.proposal_labels`):

* ``--label-complete FILE``: the file marks every lesion of its volumes: hit 1, miss 0
  (volumes a JSON flags ``complete: false`` are labelled as RECIST-only);
* ``--label-recist FILE``: RECIST marks only: hit 1, miss -1 (unknown).

Both may be given (complete volumes V_M and RECIST-marked V_H of a harvest round); the complete
file wins for volumes in both.  Volumes in neither keep -1.
"""
import argparse
import sys
from typing import Iterable, List, Optional, Sequence

from mmlesion.structures.proposals import ProposalSet, proposals_from_predictions
from mmlesion.structures.volume import VolumeInfo

__all__ = ['parse_args', 'scan_proposal_set', 'label_from_files', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Scan sub-volumes with a lesion detector and write their 3D proposals')
    p.add_argument('config', help='detector config')
    p.add_argument('checkpoint', help='detector weights')
    p.add_argument('--ann', required=True,
                   help='annotation file whose volumes are scanned (JSON or LH pickle)')
    p.add_argument('--image-root', required=True, help="DeepLesion's Images_png folder")
    p.add_argument('--out', required=True, help='proposal file to write (JSON)')
    p.add_argument('--label-complete', metavar='FILE',
                   help='completely annotated ground truth: hit 1, miss 0')
    p.add_argument('--label-recist', metavar='FILE',
                   help='RECIST marks only: hit 1, miss -1 (unknown)')
    p.add_argument('--score-thr', type=float, default=0.1,
                   help='t_G: slice detections scoring above it are stacked (0.1, the paper)')
    p.add_argument('--series-info', nargs='+', default=None,
                   help='DL_info.csv / converted JSONs with the spacing of volumes the '
                   'annotation file lacks it for (default: DL_info.csv beside Images_png)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='fully unpickle the checkpoint (a training checkpoint you wrote)')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument('--batch-size', type=int, default=8, help='slices per forward pass')
    p.add_argument('--num-workers', type=int, default=0,
                   help='processes preparing volumes while the model runs')
    return p.parse_args(argv)


def scan_proposal_set(model, volumes: Sequence[VolumeInfo], image_root: str, *,
                      series_info=None, num_workers: int = 0, meta: Optional[dict] = None,
                      progress: bool = True, **predictor_kwargs) -> ProposalSet:
    """Scan ``volumes`` with ``model`` (:func:`~mmlesion.apis.init_lesion_detector`) and return
    their proposals (unlabelled).  ``predictor_kwargs``: ``score_thr``, ``batch_size``, ... of
    :class:`~mmlesion.apis.VolumePredictor`."""
    from mmengine.utils import ProgressBar

    from mmlesion.apis.inference import predict_volumes
    preds = predict_volumes(model, list(volumes), image_root, series_info=series_info,
                            num_workers=num_workers, **predictor_kwargs)
    bar = ProgressBar(len(volumes)) if progress and volumes else None

    def counted(items: Iterable):
        for item in items:
            yield item
            if bar is not None:
                bar.update()

    meta = dict(meta or {}, **{k: v for k, v in predictor_kwargs.items() if k == 'score_thr'})
    pset = proposals_from_predictions(counted(preds), meta=meta)
    if bar is not None:
        sys.stdout.write('\n')
    return pset


def label_from_files(pset: ProposalSet, complete: Optional[str] = None,
                     recist: Optional[str] = None) -> dict:
    """Label ``pset`` in place: RECIST-only file first, then the complete file (which wins).

    Returns:
        ``{'recist': counts, 'complete': counts}`` for the files given.
    """
    from mmlesion.evaluation.annotation_set import load_annotation_set
    from mmlesion.evaluation.functional.proposal_labels import label_proposal_set
    out = {}
    for source, path in (('recist', recist), ('complete', complete)):
        if path:
            out[source] = label_proposal_set(pset, load_annotation_set(path), source)
            pset.meta[f'label_{source}'] = str(path)
    return out


def main(argv: Optional[List[str]] = None) -> ProposalSet:
    """Scan, label and write; returns the proposal set.

    Raises:
        SystemExit: (status 1) for unreadable inputs or volumes missing on disk, after
            printing the reason.
    """
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers the components)
    from mmlesion.apis.inference import check_series_folders, init_lesion_detector
    from mmlesion.evaluation.annotation_set import load_annotation_set
    try:
        ann = load_annotation_set(args.ann)
        volumes = list(ann.volumes.values())
        check_series_folders(volumes, args.image_root, args.ann)
        model = init_lesion_detector(args.config, args.checkpoint, device=args.device,
                                     trust_checkpoint=args.trust_checkpoint)
        pset = scan_proposal_set(
            model, volumes, args.image_root, series_info=args.series_info,
            num_workers=args.num_workers, score_thr=args.score_thr,
            batch_size=args.batch_size,
            meta=dict(config=args.config, checkpoint=args.checkpoint, ann=args.ann))
        counts = label_from_files(pset, args.label_complete, args.label_recist)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        raise SystemExit(1) from None
    pset.save(args.out)
    c = pset.label_counts()
    print(f'{len(pset.volumes)} volumes, {len(pset)} proposals (t_G = {args.score_thr:g}): '
          f'{c["positive"]} positive, {c["negative"]} negative, {c["unknown"]} unknown')
    for source, n in counts.items():
        print(f'labelled against {source} ground truth: {n["volumes"]} volumes')
    print(f'wrote {args.out}')
    return pset


if __name__ == '__main__':
    main()
