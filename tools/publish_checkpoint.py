#!/usr/bin/env python3
"""Strip a training checkpoint to weights + plain metadata (loads with weights-only unpickling).

    tools/publish_checkpoint.py work_dirs/mscn/epoch_8.pth mscn_hnsl_weights.pth
"""
import argparse

import _interpreter  # noqa: F401  (runs the checkout's .venv: tools/README.md)

from mmlesion.engine.checkpoint import publish_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='a checkpoint you trust (it is fully unpickled)')
    parser.add_argument('dst', help='output file')
    args = parser.parse_args()
    out = publish_checkpoint(args.src, args.dst)
    print(f'wrote {args.dst}: {len(out["state_dict"])} tensors')


if __name__ == '__main__':
    main()
