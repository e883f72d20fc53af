#!/usr/bin/env python3
"""``make demo``: the mmlesion pipeline end to end on synthetic DeepLesion-format data (CPU)."""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.demo import main

if __name__ == '__main__':
    main()
