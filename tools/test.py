"""Test a detector: mmdet's arguments plus ``--eval``, ``--ann``, ``--trust-checkpoint``::

    python tools/test.py CONFIG CHECKPOINT --eval p3d|iou3d|recist2d [--ann FILE] [--out det.pkl]
        [--show-dir DIR] [--work-dir DIR] [--cfg-options ...] [--launcher ...]

The argument parser and the logic live in :mod:`mmlesion.cli.test`.
"""
from mmlesion.cli.test import main

if __name__ == '__main__':
    main()
