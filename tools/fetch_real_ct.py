#!/usr/bin/env python3
"""Put the two real chest CTs (pyradiomics test data) into ``<cache>/real_ct``, SHA-256 checked:

    tools/fetch_real_ct.py [--from DIR | --url-base URL] [--cache DIR] [--if-available]

The logic lives in :mod:`mmlesion.cli.fetch_real_ct`.
"""
import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.cli.fetch_real_ct import main

if __name__ == '__main__':
    main()
