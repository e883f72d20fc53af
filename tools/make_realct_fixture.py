#!/usr/bin/env python3
"""Write the real CT volumes (pyradiomics lung1/lung2 NRRD + lesion masks) in DeepLesion's format.

    tools/make_realct_fixture.py --out DIR [--real-ct-dir DIR] [--half-range-mm 30] \
        [--overwrite] [--quiet]

Writes DIR/Images_png/<series>/<KKK>.png (16-bit, HU + 32768 exactly; KKK = NRRD z index + 1),
DIR/DL_info.csv (one row per real lesion, 1-based), the complete mask ground truth under
DIR/ground_truth/ (Lesion Harvester pickles, Mask-Box-2D/3D.pkl, truth.json) and
DIR/summary.json.  The argument parser lives in :mod:`mmlesion.cli.make_realct_fixture`, the
writer in :mod:`mmlesion.synthetic.realct`.
"""
import sys

import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.make_realct_fixture import main

if __name__ == '__main__':
    sys.exit(main())
