"""``tools/make_synthetic.py``: generate synthetic CT sub-volumes in DeepLesion's format.

The argument parser; the generator is :func:`mmlesion.synthetic.generate_dataset`.
"""
import argparse
import sys

from mmlesion.synthetic.generator import ANATOMIES, generate_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate synthetic CT sub-volumes in the NIH DeepLesion format '
        '(16-bit PNG slices, DL_info.csv) with complete ground truth (Lesion Harvester pickles, '
        'truth.json).')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--volumes', type=int, required=True, help='number of sub-volumes')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed; the same seed gives the same bytes (default 0)')
    parser.add_argument('--image-size', type=int, default=512,
                        help='nominal image width = height in px (default 512)')
    parser.add_argument('--slices-mm', type=float, nargs='+', default=None,
                        help='allowed slice intervals in mm (default 1 1.25 2 2.5 5)')
    parser.add_argument('--max-slices', type=int, default=40,
                        help='most slices per sub-volume (default 40)')
    parser.add_argument('--small-image-fraction', type=float, default=0.1,
                        help='fraction of series 0.75 times smaller than --image-size '
                        '(default 0.1)')
    parser.add_argument('--noisy-fraction', type=float, default=0.02,
                        help='fraction of DL_info rows flagged Possibly_noisy, their RECIST '
                        'mark perturbed (default 0.02)')
    parser.add_argument('--anatomy', choices=ANATOMIES, default='phantom',
                        help='phantom: analytic CT-like phantoms; real: synthetic lesions and '
                        'look-alikes inserted into augmented windows of the two real chest CTs '
                        '(default phantom)')
    parser.add_argument('--real-ct-dir', default=None,
                        help='--anatomy real: folder of lung{1,2}_{image,label}.nrrd (default '
                        '$MMLESION_REAL_CT_DIR, $MMLESION_SHARED_DATA/real_ct, <cache>/real_ct or '
                        '../shared/data/real_ct; see mmlesion.utils.locations)')
    parser.add_argument('--held-out', default='lung1', choices=('lung1', 'lung2'),
                        help='--anatomy real: the real volume that gives the test split (the '
                        'other gives train and val; default lung1)')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes rendering series in parallel (default: the CPUs '
                        'available; the output bytes do not depend on it)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a dataset already in --out')
    parser.add_argument('--quiet', action='store_true', help='print nothing but errors')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run the CLI; returns the summary dict (also written to ``--out/summary.json``)."""
    args = parse_args(argv)
    summary = generate_dataset(
        args.out, args.volumes, seed=args.seed, image_size=args.image_size,
        slice_intervals_mm=args.slices_mm, max_slices=args.max_slices,
        small_image_fraction=args.small_image_fraction, noisy_fraction=args.noisy_fraction,
        overwrite=args.overwrite, verbose=not args.quiet, anatomy=args.anatomy,
        real_ct_dir=args.real_ct_dir, held_out=args.held_out, workers=args.workers)
    if not args.quiet:
        print(f"[make_synthetic] wrote {summary['volumes']} sub-volumes "
              f"({summary['slices_written']} slices, {summary['lesions']} lesions, "
              f"{summary['marked_lesions']} marked, {summary['lookalikes']} look-alikes) to "
              f"{args.out} in {summary['generation_time_s']:.1f} s", file=sys.stderr)
    return summary
