#!/usr/bin/env python3
"""Import a Lesion Harvester / LENS annotation release into mmlesion COCO-style JSON.

    tools/import_annotations.py --pkl Revised-Test1071.pkl --out vd_test.json \
        [--format auto|lh2d|lh3d|lens] [--subset val|test] [--dl-info DL_info.csv|converted.json] \
        [--source revised] [--split test]

The pickle is read with mmlesion's restricted unpickler; x/y become 0-based and z absolute.
The argument parser and the logic live in :mod:`mmlesion.datasets.converters.annotation_release`.
"""
import sys

import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.datasets.converters.annotation_release import main

if __name__ == '__main__':
    sys.exit(main())
