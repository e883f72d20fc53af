"""Benchmark: 3D stacking throughput (slices per second, one core).

Synthetic, fixed seed: ``--volumes`` volumes (default 200) of ``--slices`` slices (default 40)
with about ``--dets`` detections per slice (default 10): a few lesion-like objects drifting and
growing smoothly across 3-15 slices with occasional missed slices, plus random clutter.  Prints
the time and slices/s and the number of tracklets; timings are printed, never asserted.  Run it
with one BLAS thread (``OMP_NUM_THREADS=1``) for a one-core figure; the script sets that default.

    python tools/benchmarks/bench_stack.py [--volumes 200] [--slices 40] [--dets 10]
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mmlesion.stacking import stack_volume  # noqa: E402


def make_volume(rng: np.random.Generator, n_slices: int, dets_per_slice: float,
                image_size=(512, 512)):
    """``{z: (n, 5)}`` detections of one synthetic sub-volume (absolute z from 100)."""
    w_img, h_img = image_size
    z0 = 100
    slices = {z: [] for z in range(z0, z0 + n_slices)}
    n_objects = max(1, int(round(dets_per_slice * 0.3)))
    for _ in range(n_objects * 3):
        length = int(rng.integers(3, 16))
        start = int(rng.integers(z0, z0 + n_slices - 2))
        cx, cy = rng.uniform(50, w_img - 50), rng.uniform(50, h_img - 50)
        size = rng.uniform(8, 80)
        drift = rng.normal(0, 0.02 * size, size=2)
        peak = rng.uniform(0.2, 0.95)
        for k in range(length):
            z = start + k
            if z not in slices or rng.random() < 0.08:  # missed slice
                continue
            grow = 1.0 - abs(k - length / 2) / length  # grows then shrinks
            s = size * (0.7 + 0.3 * grow)
            c = np.array([cx, cy]) + drift * k + rng.normal(0, 0.01 * size, size=2)
            score = float(np.clip(peak * (0.6 + 0.4 * grow) + rng.normal(0, 0.03), 0, 1))
            slices[z].append([c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2, score])
    for z in slices:
        n_clutter = rng.poisson(max(dets_per_slice * 0.8, 0.0))
        for _ in range(n_clutter):
            cx, cy = rng.uniform(0, w_img), rng.uniform(0, h_img)
            s = rng.uniform(6, 60)
            slices[z].append([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2,
                              float(rng.uniform(0, 0.6))])
    return {z: np.asarray(v, dtype=np.float64).reshape(-1, 5) for z, v in slices.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--volumes', type=int, default=200,
                        help='synthetic volumes (default 200)')
    parser.add_argument('--slices', type=int, default=40, help='slices per volume (default 40)')
    parser.add_argument('--dets', type=float, default=10.0,
                        help='mean detections per slice (default 10)')
    parser.add_argument('--score-thr', type=float, default=0.1,
                        help='stacking score threshold t_G (default 0.1)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    volumes = [make_volume(rng, args.slices, args.dets) for _ in range(args.volumes)]
    n_slices = sum(len(v) for v in volumes)
    n_dets = sum(len(d) for v in volumes for d in v.values())
    n_kept = sum(int((d[:, 4] > args.score_thr).sum()) for v in volumes for d in v.values())
    print(f'synthetic: {args.volumes} volumes, {n_slices} slices, {n_dets} detections '
          f'({n_dets / n_slices:.1f}/slice), {n_kept} above t_G={args.score_thr}')

    t0 = time.perf_counter()
    results = [stack_volume(v, (512, 512), score_thr=args.score_thr) for v in volumes]
    dt = time.perf_counter() - t0
    n_trk = sum(len(r) for r in results)
    n_multi = sum(1 for r in results for t in r if len(t) > 1)
    n_filled = sum(int(t.filled.sum()) for r in results for t in r)
    print(f'stacked in {dt:.2f} s: {n_slices / dt:.0f} slices/s, {n_kept / dt:.0f} kept dets/s; '
          f'{n_trk} tracklets ({n_multi} spanning > 1 slice, {n_filled} gap slices bridged)')

    again = [stack_volume(v, (512, 512), score_thr=args.score_thr) for v in volumes[:5]]
    same = all(len(a) == len(b) and all(np.array_equal(x.z, y.z) and
                                        np.array_equal(x.boxes, y.boxes) for x, y in zip(a, b))
               for a, b in zip(again, results[:5]))
    print('deterministic on a re-run:', same)
    return 0 if same else 1


if __name__ == '__main__':
    raise SystemExit(main())
