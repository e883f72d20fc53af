"""Benchmark: CPU cost of the LPC's patch extraction, through ProposalPatchDataset.

Writes ``--volumes`` DeepLesion-format sub-volumes (16-bit PNGs of ``--size`` px, ``--slices``
slices at 0.7 mm/px and 1.25 / 2.5 / 5 mm slice intervals, fixed seed) and a proposal file
with ``--proposals`` random proposals per volume (1-8 slices, 8-80 px boxes), then reads every
proposal in test order (sequential, the proposals of a volume together) for each setting:

* the paper-sized DeepLesion configs: 3 views of 224 px (multi-view), 1 view (axial),
  a 64^3 cube (3D);
* the synthetic CPU configs: 3 views of 64 px, a 32^3 cube.

Prints, per setting: proposals/s, ms per proposal, PNG decodes per PNG (1.00 = every PNG decoded
once however many proposals its volume has), and the share of the time spent decoding.  Timings
are printed, never asserted.  ``--threads`` (default 1, one data-loader worker's share) sets
numpy's BLAS threads too, before numpy loads: two BLAS threads spin-waiting on a busy 2-core CPU
made the resampling ~10x slower.

    python tools/benchmarks/bench_lpc_patches.py [--volumes 4] [--slices 40] [--size 512] \
        [--proposals 20] [--threads 1]
"""
import os
import sys

_THREADS = sys.argv[sys.argv.index('--threads') + 1] if '--threads' in sys.argv[:-1] else '1'
for _var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, _THREADS)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

SETTINGS = (
    ('multi-view 3 x 224 px', dict(mode='views', patch_size=224)),
    ('axial 1 x 224 px', dict(mode='views', views=('axial', ), patch_size=224)),
    ('3D cube 64^3', dict(mode='cube', patch_size=64)),
    ('synthetic multi-view 3 x 64 px', dict(mode='views', patch_size=64, pad_px=32)),
    ('synthetic 3D cube 32^3', dict(mode='cube', patch_size=32, pad_px=32)),
)


def write_data(root: str, n_volumes: int, n_slices: int, size: int, n_props: int,
               seed: int = 0) -> str:
    """PNG volumes under ``root/Images_png`` and their proposal file; returns its path."""
    from mmlesion.structures import Tracklet, VolumeInfo
    from mmlesion.structures.proposals import Proposal, ProposalSet
    rng = np.random.default_rng(seed)
    vols, props = {}, []
    yy, xx = np.mgrid[:size, :size]
    body = ((xx - size / 2) / (0.45 * size))**2 + ((yy - size / 2) / (0.35 * size))**2 < 1
    for v in range(n_volumes):
        series = f'{v + 1:06d}_01_01'
        first = 10
        key = f'{series}_{first:03d}-{first + n_slices - 1:03d}'
        interval = (1.25, 2.5, 5.0)[v % 3]
        os.makedirs(os.path.join(root, 'Images_png', series))
        for k in range(n_slices):
            hu = np.where(body, 40.0, -1000.0) + rng.normal(0, 20, (size, size))
            raw = np.clip(np.rint(hu) + 32768, 0, 65535).astype(np.uint16)
            cv2.imwrite(os.path.join(root, 'Images_png', series, f'{first + k:03d}.png'), raw,
                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
        vols[key] = VolumeInfo(key, series, (first, first + n_slices - 1), [0.7, 0.7, interval],
                               interval, image_size=(size, size))
        for i in range(n_props):
            n = int(rng.integers(1, 9))
            z0 = int(rng.integers(first, first + n_slices - n + 1))
            w, h = rng.uniform(8, 80, 2)
            x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
            boxes = [[x, y, x + w, y + h, float(rng.uniform(0.1, 1))] for _ in range(n)]
            props.append(Proposal(key, i, Tracklet(np.arange(z0, z0 + n), boxes),
                                  label=int(rng.integers(0, 2))))
    path = os.path.join(root, 'proposals.json')
    ProposalSet(vols, props).save(path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--volumes', type=int, default=4, help='synthetic sub-volumes to write')
    p.add_argument('--slices', type=int, default=40, help='slices per sub-volume')
    p.add_argument('--size', type=int, default=512, help='slice width and height, px')
    p.add_argument('--proposals', type=int, default=20, help='random proposals per volume')
    p.add_argument('--threads', type=int, default=1,
                   help='BLAS, torch and OpenCV threads (BLAS: set before numpy loads)')
    args = p.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from mmengine.registry import init_default_scope

    import mmlesion  # noqa: F401
    from mmlesion.datasets.lpc_dataset import ProposalPatchDataset
    init_default_scope('mmdet')

    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        ann = write_data(root, args.volumes, args.slices, args.size, args.proposals)
        n_png = args.volumes * args.slices
        print(f'{args.volumes} volumes x {args.slices} slices of {args.size} px '
              f'({n_png} PNGs), {args.proposals} proposals each: written in '
              f'{time.perf_counter() - t:.1f} s')
        # the decode cost alone: every PNG once
        from mmlesion.datasets.volume_reader import VolumeReader
        reader = VolumeReader(os.path.join(root, 'Images_png'), max_volumes=0)
        t = time.perf_counter()
        for v in range(args.volumes):
            reader.get_volume(f'{v + 1:06d}_01_01', (10, 10 + args.slices - 1), [])
        decode_s = time.perf_counter() - t
        print(f'decoding alone: {1000 * decode_s / n_png:.2f} ms per PNG')
        print(f'{"setting":<32} {"proposals/s":>12} {"ms/proposal":>12} '
              f'{"decodes/PNG":>12} {"decoding":>9}')
        for name, kwargs in SETTINGS:
            ds = ProposalPatchDataset(ann, data_prefix=dict(img=os.path.join(root, 'Images_png')),
                                      test_mode=True, cache_volumes=1,
                                      pipeline=[dict(type='PackLPCInputs')], **kwargs)
            t = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            dt = time.perf_counter() - t
            print(f'{name:<32} {len(ds) / dt:12.1f} {1000 * dt / len(ds):12.2f} '
                  f'{ds.reader.num_decoded / n_png:12.2f} {decode_s / dt:9.0%}')


if __name__ == '__main__':
    main()
