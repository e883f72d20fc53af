#!/usr/bin/env python3
"""The paper's Table III: train each detector (MSCN-HNSL, MSCN, CenterNet 3-slice, Faster R-CNN
2.5D and its missing-label strategies OBHS, OBSS, M-OBHS; the "+ P_H^+" rows given a harvest
round's file), score it by P3D on a complete test set, print our numbers beside the paper's::

    tools/benchmarks/table3.py --setting synthetic --data-root work_dirs/table3/data \
        --work-dir work_dirs/table3 [--epochs N] [--harvest-train ROUND/next_train.json]
    tools/benchmarks/table3.py --setting deeplesion --work-dir work_dirs/table3_deeplesion \
        --test-ann Revised-Test1071.pkl [--harvest-train FILE] [--launcher pytorch]

The logic lives in :mod:`mmlesion.cli.table3`.
"""
import os.path as osp
import sys

if __name__ == '__main__':  # run as a tool: the checkout's .venv (tools/README.md)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import _interpreter  # noqa: F401,E402

from mmlesion.cli.table3 import main  # noqa: E402

if __name__ == '__main__':
    main()
