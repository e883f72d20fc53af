#!/usr/bin/env python3
"""Iterative lesion harvesting: ``tools/harvest_round.py CONFIG --work-dir DIR [--round N |
--rounds K]`` (resumable rounds; docs/method.md#harvesting)."""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.harvest_round import main

if __name__ == '__main__':
    main()
