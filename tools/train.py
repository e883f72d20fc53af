#!/usr/bin/env python3
"""Train a detector: ``tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] ...``."""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.train import main

if __name__ == '__main__':
    main()
