#!/usr/bin/env python3
"""The LPC ablation of the paper (Fig. 5b): train the multi-view, axial and 3D lesion proposal
classifiers on the same proposals and compare s_g, s_c and s_g * s_c::

    tools/lpc_ablation.py --train proposals_train.json --eval proposals_eval.json \
        --image-root DeepLesion/Images_png --work-dir work_dirs/lpc_ablation \
        [--configs A.py B.py C.py] [--names ...] [--epochs N] [--cfg-options ...]

The logic lives in :mod:`mmlesion.cli.lpc_ablation`.
"""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.lpc_ablation import main

if __name__ == '__main__':
    main()
