#!/usr/bin/env python3
"""Scan sub-volumes with a detector and write their 3D proposals (a proposal file,
docs/proposals.md)::

    tools/scan_proposals.py CONFIG CHECKPOINT --ann ANN --image-root Images_png \
        --out proposals.json [--label-complete FILE] [--label-recist FILE] \
        [--trust-checkpoint] [--score-thr 0.1]

The logic lives in :mod:`mmlesion.cli.scan_proposals`.
"""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.scan_proposals import main

if __name__ == '__main__':
    main()
