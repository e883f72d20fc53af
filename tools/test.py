#!/usr/bin/env python3
"""Test a detector: mmdet's arguments plus ``--eval``, ``--ann``, ``--trust-checkpoint``::

    tools/test.py CONFIG CHECKPOINT --eval p3d|iou3d|recist2d [--ann FILE] [--out det.pkl]
        [--show-dir DIR] [--work-dir DIR] [--cfg-options ...] [--launcher ...]

The argument parser and the logic live in :mod:`mmlesion.cli.test`.
"""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.test import main

if __name__ == '__main__':
    main()
