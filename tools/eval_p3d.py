"""P3D of a Lesion Harvester format detection file:
``python tools/eval_p3d.py --ann ANN --det DET [--json-out FILE] [--plot FILE.png] [--interp ...]``.
The logic lives in :mod:`mmlesion.cli.eval_p3d`."""
from mmlesion.cli.eval_p3d import main

if __name__ == '__main__':
    main()
