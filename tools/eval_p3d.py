#!/usr/bin/env python3
"""P3D of a Lesion Harvester format detection file:
``tools/eval_p3d.py --ann ANN --det DET [--json-out FILE] [--plot FILE.png] [--interp ...]``.
The logic lives in :mod:`mmlesion.cli.eval_p3d`."""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.eval_p3d import main

if __name__ == '__main__':
    main()
