"""``tools/make_realct_fixture.py``: write the real CT volumes in DeepLesion's format.

The argument parser; the writer is :func:`mmlesion.synthetic.realct.write_realct_fixture`.
"""
import argparse
import sys

from mmlesion.synthetic.realct import write_realct_fixture


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Write the real CT volumes (pyradiomics lung1/lung2 NRRD + masks) in the '
        'NIH DeepLesion format: 16-bit PNG slices (HU + 32768, slice index = NRRD z + 1), '
        'DL_info.csv and the complete mask ground truth (Lesion Harvester pickles, truth.json).')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--real-ct-dir', default=None,
                   help='folder with lung{1,2}_{image,label}.nrrd (default: '
                   '$MMLESION_REAL_CT_DIR, $MMLESION_SHARED_DATA/real_ct, <cache>/real_ct or '
                   '../shared/data/real_ct; see mmlesion.utils.locations)')
    p.add_argument('--half-range-mm', type=float, default=None,
                   help='release key slice +- this many mm like DeepLesion (default: the whole '
                   'volume)')
    p.add_argument('--overwrite', action='store_true', help='replace a dataset already in --out')
    p.add_argument('--quiet', action='store_true', help='print nothing but errors')
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (1 with a one-line error on bad input)."""
    args = parse_args(argv)
    try:
        summary = write_realct_fixture(args.out, args.real_ct_dir, args.half_range_mm,
                                       overwrite=args.overwrite, verbose=not args.quiet)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"[make_realct_fixture] wrote {summary['volumes']} volumes "
              f"({summary['slices_written']} slices, {summary['lesions']} lesions) to {args.out} "
              f"in {summary['generation_time_s']:.1f} s", file=sys.stderr)
    return 0
