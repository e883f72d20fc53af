"""Train a detector: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] ...``."""
from mmlesion.cli.train import main

if __name__ == '__main__':
    main()
