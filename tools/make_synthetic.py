#!/usr/bin/env python3
"""Generate synthetic CT sub-volumes in the NIH DeepLesion format (docs/method.md#synthetic).

    tools/make_synthetic.py --out DIR --volumes N --seed S [--image-size 512] \
        [--slices-mm 5 2.5] [--max-slices 40] [--workers N] [--overwrite] [--quiet]

Writes DIR/Images_png/<series>/<slice>.png (16-bit, HU + 32768), DIR/DL_info.csv, the complete
ground truth in the Lesion Harvester pickle formats under DIR/ground_truth/ (plus truth.json) and
DIR/summary.json.  The argument parser lives in :mod:`mmlesion.cli.make_synthetic`, the generator
in :mod:`mmlesion.synthetic`.
"""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.make_synthetic import main

if __name__ == '__main__':
    main()
