"""``make demo``: the mmlesion pipeline end to end on synthetic DeepLesion-format data (CPU)."""
from mmlesion.cli.demo import main

if __name__ == '__main__':
    main()
