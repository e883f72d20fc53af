#!/usr/bin/env python3
"""Convert DeepLesion's DL_info.csv to mmlesion COCO-style JSON (train/val/test.json +
summary.json).

    tools/convert_deeplesion.py --data-root DeepLesion \
        --out-dir data/deeplesion/annotations [--image-dir DIR] [--keep-noisy | --drop-noisy] \
        [--no-image-check] [--skip-invalid]

CSV x/y are 1-based; the JSON is 0-based (1 subtracted).  The argument parser and the logic live
in :mod:`mmlesion.datasets.converters.deeplesion`.
"""
import sys

import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.datasets.converters.deeplesion import main

if __name__ == '__main__':
    sys.exit(main())
