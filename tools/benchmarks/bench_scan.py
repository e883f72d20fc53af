#!/usr/bin/env python3
"""Benchmark: the volume scan's cost, stage by stage, on the same volumes in one run.

    tools/benchmarks/bench_scan.py CONFIG [CHECKPOINT] --data-root DIR --ann FILE \\
        [--workers N] [--device cpu|cuda] [--max-volumes N] [--batch-size 8] \\
        [--amp-dtype bf16|fp16] [--channels-last] [--cross-volume] [--no-pin-memory] \\
        [--variants fp32,bf16,bf16+cl,bf16+cl+xv]
    # the demo's data and model:
    tools/benchmarks/bench_scan.py \\
        configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py \\
        work_dirs/demo/mscn_hnsl/epoch_24.pth --trust-checkpoint \\
        --data-root work_dirs/demo/data --ann work_dirs/demo/data/annotations/test.json

Stages, each timed over every slice of the volumes of ``--ann`` (``DIR/Images_png``, spacing from
``DIR/DL_info.csv`` where the annotation file lacks it):

(a)  pure 16-bit PNG decoding of every slice (``png_codec.read_uint16_png``: ``cv2.imread``);
(b)  the scan's input side alone: :class:`~mmlesion.apis.VolumeScanInputs` through
     :meth:`~mmlesion.apis.VolumePredictor.dataloader` -- decode once, HU, resample to the
     channels' 2 mm, window, the test pipeline's resize and pack -- the code path of the scan;
(b0) the same input side as it was before issue 15 (kept below: per window, blend the slices,
     window the whole stack, resize it, pack it), and whether its model inputs equal (b)'s bit
     for bit (``--no-reference`` skips it);
(c)  the full scan, :func:`~mmlesion.apis.predict_volumes`: (b), the model, and stacking;
(d)  stacking alone (:func:`~mmlesion.stacking.stack_volume`) on (c)'s slice detections;
(e)  the model and stacking alone, on the volumes prepared beforehand and held in memory
     (:meth:`~mmlesion.apis.VolumePredictor.predict_items`; pinned where the scan pins): what the
     device does when the data side keeps up.

The GPU path (docs/method.md#scan-gpu): ``--amp-dtype``, ``--channels-last``, ``--cross-volume``
(and pinned inputs, on by default on CUDA) set the scan's settings; ``--variants`` times (c) and
(e) for several settings in the same run, one row each, after one warm-up pass each -- names
joined by ``+`` from ``fp32``, ``fp16``, ``bf16`` (autocast dtype), ``cl`` (channels last),
``xv`` (cross-volume batches), ``nopin`` (pageable inputs) -- and reports each variant's largest
box and score differences from the first and whether its tracklets equal the first's (with a
randomly initialised model there may be none: its boxes are ~0 px).

(a), (b) and (b0) run in ``--workers`` DataLoader processes (0: in this process), as the scan's
data side does, with one torch thread and ``--cv2-threads`` (default 1) OpenCV threads per
process, so that with ``--workers 0`` the data side is one core; they are timed ``--repeat``
times, interleaved, best of each.  Prints slices/s, the ratios b/a (input side over pure
decoding, same slices, same processes), b0/b and c/b, and stacking's time per slice.  Files are
read once before timing (warm page cache).  Without CHECKPOINT the model is randomly initialised
(its speed is real, its detections -- and so stacking's load -- are not).  Timings are printed,
never asserted.  CPU or CUDA (``--device``) alike.  Output is flushed line by line.
"""
import os.path as osp
import sys

if __name__ == '__main__':  # run as a tool: the checkout's .venv (tools/README.md)
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import _interpreter  # noqa: F401,E402

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

__all__ = ['main', 'parse_args']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Time the volume scan stage by stage (PNG decoding, input side, full scan, '
        'stacking) on the same volumes, and print slices/s and ratios')
    p.add_argument('config', help='detector config (its test pipeline is the scan\'s)')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='detector weights (default: random initialisation)')
    p.add_argument('--data-root', required=True,
                   help='folder with Images_png/ (and DL_info.csv for the spacing)')
    p.add_argument('--ann', required=True,
                   help='annotation file whose volumes are scanned (JSON or LH pickle)')
    p.add_argument('--workers', type=int, default=0,
                   help='DataLoader processes for the data side (0: in this process)')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument('--max-volumes', type=int, default=None,
                   help='scan only the first N volumes (by key)')
    p.add_argument('--batch-size', type=int, default=8, help='slices per forward pass')
    p.add_argument('--score-thr', type=float, default=0.1,
                   help='t_G: slice detections scoring above it are stacked (0.1)')
    p.add_argument('--fp16', action='store_true',
                   help='autocast the model as mmengine does (float16 on CUDA, bfloat16 on CPU)')
    p.add_argument('--amp-dtype', choices=('bf16', 'fp16'), default=None,
                   help='autocast the model in this dtype (default: float32)')
    p.add_argument('--channels-last', action='store_true',
                   help='channels-last weights and inputs')
    p.add_argument('--cross-volume', action='store_true',
                   help='fill each forward pass with slices of consecutive volumes')
    p.add_argument('--no-pin-memory', action='store_true',
                   help='pageable inputs on CUDA (default: pinned, non-blocking copies)')
    p.add_argument('--variants', default=None,
                   help='comma-separated scan settings timed side by side in (c) and (e), each '
                   '"+"-joined from fp32, fp16, bf16, cl, xv, tc (torch.compile), nopin, e.g. '
                   '"fp32,bf16,bf16+cl,bf16+cl+xv" (default: the one the flags above set)')
    p.add_argument('--no-prepared', action='store_true',
                   help='skip (e), the model on volumes prepared beforehand')
    p.add_argument('--cv2-threads', type=int, default=1,
                   help='OpenCV threads per process (default 1: the data side per core)')
    p.add_argument('--repeat', type=int, default=3,
                   help='timed runs of (a), (b) and (b0), interleaved; the best is printed '
                   '(default 3)')
    p.add_argument('--no-reference', action='store_true',
                   help='skip (b0), the pre-issue-15 input side')
    p.add_argument('--no-model', action='store_true',
                   help='skip (c) and (d): the data side only')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='fully unpickle the checkpoint (a training checkpoint you wrote)')
    return p.parse_args(argv)


# ---- (b0): the input side before issue 15, kept to time and check against -------------------
def _reference_hu_window(hu, low, high, out):
    low, high = float(low), float(high)
    out_low, out_high = float(out[0]), float(out[1])
    hu = np.asarray(hu, dtype=np.float32)
    clipped = np.clip(hu, low, high)
    width = high - low
    if width == 0:
        return np.full_like(clipped, out_low, dtype=np.float32)
    scale = np.float32((out_high - out_low) / width)
    mapped = (clipped - np.float32(low)) * scale + np.float32(out_low)
    return mapped.astype(np.float32, copy=False)


def _reference_window(hu, window, out):
    from mmlesion.datasets import slice_sampling as ss
    window = ss.normalize_window(window)
    if not isinstance(window[0], tuple):
        return _reference_hu_window(hu, window[0], window[1], out)
    acc = None
    for low, high in window:
        part = _reference_hu_window(hu, low, high, (0.0, 1.0))
        acc = part if acc is None else acc + part
    scale = np.float32((float(out[1]) - float(out[0])) / len(window))
    return (acc * scale + np.float32(out[0])).astype(np.float32, copy=False)


def _reference_inputs_class():
    from mmlesion.apis.inference import ArrayVolume, VolumeScanInputs
    from mmlesion.datasets import slice_sampling as ss

    class ReferenceScanInputs(VolumeScanInputs):
        """:class:`VolumeScanInputs` before issue 15: every window blended, windowed, resized
        and packed whole (the decoder is today's)."""

        def _prepare(self, vol, info):
            ld = self.loader
            if isinstance(vol, ArrayVolume):
                volume = vol.slices()
            else:
                volume = self.reader.get_volume(vol.series, vol.slice_range, vol.missing_slices)
            offsets = ss.sample_positions(info.slice_interval, ld.num_slices,
                                          ld.slice_interval_mm)
            slices, size = [], None
            for z in sorted(volume):
                plan = ss.interpolation_plan(z, tuple(info.slice_range), volume, offsets)
                img = ss.blend_slices(plan, volume)
                if ld.window_hu is not None:
                    img = _reference_window(img, ld.window_hu, ld.out_range)
                if not ld.to_float32:
                    img = np.round(img).astype(np.uint8)
                size = (img.shape[1], img.shape[0])
                results = self._sample(vol, info, z, size)
                results['img'] = img
                slices.append((int(z), self._transform(self.transforms, results, z, info)))
            return slices, size

    return ReferenceScanInputs


# ---- stages ------------------------------------------------------------------------------
def _decode_loader(paths_by_volume: Sequence[Sequence[str]], workers: int, cv2_threads: int):
    import torch.utils.data as tud

    from mmlesion.datasets.png_codec import read_uint16_png

    class DecodeVolumes(tud.Dataset):
        """Item i: decode every slice of volume i; returns the number of slices."""

        def __len__(self):
            return len(paths_by_volume)

        def __getitem__(self, i):
            for path in paths_by_volume[i]:
                read_uint16_png(path)
            return len(paths_by_volume[i])

    return tud.DataLoader(DecodeVolumes(), batch_size=None, num_workers=workers,
                          collate_fn=_identity, worker_init_fn=_WorkerInit(cv2_threads))


def _identity(x):
    return x


class _WorkerInit:
    """Picklable DataLoader ``worker_init_fn``: one torch thread, ``cv2_threads`` OpenCV."""

    def __init__(self, cv2_threads: int):
        self.cv2_threads = cv2_threads

    def __call__(self, worker_id: int) -> None:
        import cv2
        import torch
        cv2.setNumThreads(self.cv2_threads)
        torch.set_num_threads(1)


def _sync(device: str) -> None:
    import torch
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _run_inputs(dataset, workers: int, cv2_threads: int, keep: bool):
    """Iterate a scan-inputs dataset as the scan does; -> (slices, decoded, items if keep)."""
    from torch.utils.data import DataLoader
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                        collate_fn=_identity, worker_init_fn=_WorkerInit(cv2_threads))
    n = dec = 0
    items = []
    for item in loader:
        n += len(item['slices'])
        dec += item['num_decoded']
        if keep:
            items.append([(z, p['inputs']) for z, p in item['slices']])
    return n, dec, items


_DTYPE_TOKENS = ('fp32', 'fp16', 'bf16')
_VARIANT_TOKENS = _DTYPE_TOKENS + ('cl', 'xv', 'tc', 'nopin')


def parse_variants(args: argparse.Namespace) -> List[tuple]:
    """``[(name, VolumePredictor kwargs), ...]`` of ``--variants``, else of the flags."""
    if args.variants is None:
        kw = dict(fp16=args.fp16, amp_dtype=args.amp_dtype, channels_last=args.channels_last,
                  cross_volume=args.cross_volume,
                  pin_memory=False if args.no_pin_memory else None)
        tokens = [args.amp_dtype or ('fp16' if args.fp16 else 'fp32')]
        tokens += [t for t, on in (('cl', args.channels_last), ('xv', args.cross_volume),
                                   ('nopin', args.no_pin_memory)) if on]
        return [('+'.join(tokens), kw)]
    out = []
    for name in (v.strip() for v in args.variants.split(',') if v.strip()):
        tokens = name.split('+')
        unknown = [t for t in tokens if t not in _VARIANT_TOKENS]
        dtypes = [t for t in tokens if t in _DTYPE_TOKENS]
        if unknown or len(dtypes) > 1:
            raise SystemExit(f'--variants: {name!r} is not "+"-joined from '
                             f'{", ".join(_VARIANT_TOKENS)} with at most one dtype')
        dtype = dtypes[0] if dtypes else 'fp32'
        out.append((name, dict(amp_dtype=None if dtype == 'fp32' else dtype,
                               channels_last='cl' in tokens, cross_volume='xv' in tokens,
                               compile='tc' in tokens,
                               pin_memory=False if 'nopin' in tokens else None)))
    if not out:
        raise SystemExit('--variants: no variant given')
    return out


def _tracklets_key(preds) -> list:
    return [(p.volume.key, [(t.z.tobytes(), t.boxes.tobytes(), t.filled.tobytes())
                            for t in p.tracklets]) for p in preds]


def _det_diff(preds, ref) -> tuple:
    """Largest |difference| of matching slice detections: (boxes px, scores); (inf, inf) when
    a slice has another number of detections."""
    box = score = 0.0
    for p, q in zip(preds, ref):
        for z, d in p.slice_dets.items():
            e = q.slice_dets.get(z)
            if e is None or e.shape != d.shape:
                return math.inf, math.inf
            if len(d):
                box = max(box, float(np.abs(d[:, :4] - e[:, :4]).max()))
                score = max(score, float(np.abs(d[:, 4] - e[:, 4]).max()))
    return box, score


def _row(name: str, n: int, dt: float) -> None:
    print(f'{name:<28}{n:>8}{dt:>10.3f}{n / max(dt, 1e-12):>11.1f}{1e3 * dt / max(n, 1):>10.3f}'
          f'{928e3 * dt / max(n, 1) / 3600:>11.2f}')


def _best(times: dict, key: str, n: int, dt: float) -> None:
    if key not in times or dt < times[key][1]:
        times[key] = (n, dt)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the stages; returns ``{'times': {stage: (slices, seconds)}, 'ratios': {...}}``."""
    args = parse_args(argv)
    variants = parse_variants(args)
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    import cv2
    import torch

    import mmlesion  # noqa: F401  (registers the components)
    from mmlesion.apis.inference import (
        VolumePredictor,
        check_series_folders,
        fill_spacing,
        init_lesion_detector,
    )
    from mmlesion.datasets.volume_reader import VolumeReader
    from mmlesion.evaluation.annotation_set import load_annotation_set
    from mmlesion.stacking import stack_volume

    cv2.setNumThreads(args.cv2_threads)
    image_root = osp.join(args.data_root, 'Images_png')
    series_info = osp.join(args.data_root, 'DL_info.csv')
    volumes = list(load_annotation_set(args.ann).volumes.values())
    if args.max_volumes is not None:
        volumes = volumes[:max(args.max_volumes, 0)]
    if not volumes:
        raise SystemExit(f'no volumes in {args.ann}')
    check_series_folders(volumes, image_root, args.ann)
    fill_spacing(volumes, [series_info] if osp.isfile(series_info) else [], args.ann)
    reader = VolumeReader(image_root, max_volumes=0)
    paths = [[reader.slice_path(v.series, z) for z in
              reader.available_slices(v.series, v.slice_range, v.missing_slices)]
             for v in volumes]
    n_files = sum(map(len, paths))
    for path in (p for ps in paths for p in ps):  # warm the page cache: decoding, not disk
        with open(path, 'rb') as f:
            f.read()
    sizes = sorted({cv2.imread(ps[0], cv2.IMREAD_UNCHANGED).shape[:2] for ps in paths if ps})
    intervals = sorted({v.slice_interval for v in volumes}, key=lambda x: -1 if x is None else x)

    model = init_lesion_detector(args.config, args.checkpoint, device=args.device,
                                 trust_checkpoint=args.trust_checkpoint)
    stack_cfg = dict(score_thr=args.score_thr)
    predictor = VolumePredictor(model, batch_size=args.batch_size, **stack_cfg)
    print(f'{len(volumes)} volumes, {n_files} slices of {args.ann} (H x W {sizes}, slice '
          f'intervals {intervals} mm); model '
          f'{"random init" if args.checkpoint is None else osp.basename(args.checkpoint)} on '
          f'{args.device}, batch {args.batch_size}, scan variants {[n for n, _ in variants]}; '
          f'data side: {args.workers} worker process(es) (0: this one), each '
          f'{args.cv2_threads} OpenCV thread(s) and 1 torch thread; model: '
          f'{torch.get_num_threads()} torch thread(s)')
    names = {'a': '(a)  PNG decode', 'b': '(b)  input side', 'b0': '(b0) pre-issue-15'}
    print(f'{"stage":<28}{"slices":>8}{"seconds":>10}{"slices/s":>11}{"ms/slice":>10}'
          f'{"928K h":>11}')

    # the data side as in a DataLoader worker: one torch thread (two spin-wait on a busy CPU)
    model_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    reference = None if args.no_reference else _reference_inputs_class()
    times, same = {}, None
    n_dec = 0
    for r in range(max(args.repeat, 1)):  # interleaved: every stage sees the same machine load
        t0 = time.perf_counter()
        n_a = sum(_decode_loader(paths, args.workers, args.cv2_threads))
        _best(times, 'a', n_a, time.perf_counter() - t0)

        t0 = time.perf_counter()
        n_b, n_dec, new = _run_inputs(predictor.inputs(volumes, image_root), args.workers,
                                      args.cv2_threads, keep=r == 0 and reference is not None)
        _best(times, 'b', n_b, time.perf_counter() - t0)

        if reference is not None:
            ref_inputs = reference(volumes, image_root, predictor.loader, predictor.transforms,
                                   strict=predictor.strict)
            t0 = time.perf_counter()
            n_b0, _, old = _run_inputs(ref_inputs, args.workers, args.cv2_threads, keep=r == 0)
            _best(times, 'b0', n_b0, time.perf_counter() - t0)
            if r == 0:
                same = len(new) == len(old) and all(
                    len(x) == len(y) and all(za == zb and ta.dtype == tb.dtype and
                                             torch.equal(ta, tb)
                                             for (za, ta), (zb, tb) in zip(x, y))
                    for x, y in zip(new, old))
                del new, old
    torch.set_num_threads(model_threads)
    for k, name in names.items():
        if k in times:
            _row(name, *times[k])

    preds = []
    n_trk = n_dets = 0
    if not args.no_model:
        first_key = None
        for name, kw in variants:
            base = model.module if hasattr(model, 'module') else model
            base.to(memory_format=torch.contiguous_format)  # undo an earlier variant's layout
            base.data_preprocessor._non_blocking = False
            scan = VolumePredictor(model, batch_size=args.batch_size, **stack_cfg, **kw)
            warm = scan.inputs(volumes[:1], image_root)[0]['slices'][:args.batch_size]
            if warm:  # CUDA context, cuDNN / oneDNN algorithm choice: outside the timing
                scan.detect([p for _, p in warm])
            _sync(args.device)
            t0 = time.perf_counter()
            got = list(scan.predict(volumes, image_root, num_workers=args.workers))
            _sync(args.device)
            times[f'c:{name}'] = (sum(p.num_slices for p in got), time.perf_counter() - t0)
            _row(f'(c)  full scan {name}', *times[f'c:{name}'])
            if not preds:
                preds, first_key, times['c'] = got, _tracklets_key(got), times[f'c:{name}']
            if not args.no_prepared:
                items = list(scan.dataloader(scan.inputs(volumes, image_root), args.workers))
                _sync(args.device)
                t0 = time.perf_counter()
                got_e = list(scan.predict_items(items))
                _sync(args.device)
                times[f'e:{name}'] = (sum(p.num_slices for p in got_e), time.perf_counter() - t0)
                _row(f'(e)  prepared {name}', *times[f'e:{name}'])
                del items, got_e
            if got is not preds:
                n_got = sum(len(p.tracklets) for p in got)
                print(f'     {name}: {n_got} tracklets, identical to {variants[0][0]}\'s '
                      f'({sum(len(p.tracklets) for p in preds)}): '
                      f'{_tracklets_key(got) == first_key}; its slice detections differ by '
                      '<= {:.3g} px (boxes), <= {:.3g} (scores)'.format(*_det_diff(got, preds)))
            del got

        t0 = time.perf_counter()
        for p in preds:
            if p.num_slices:
                n_trk += len(stack_volume(p.slice_dets, p.image_size, **predictor.stack_cfg))
        times['d'] = (sum(p.num_slices for p in preds), time.perf_counter() - t0)
        _row('(d)  stacking', *times['d'])
        n_dets = sum(int((d[:, 4] > args.score_thr).sum()) for p in preds
                     for d in p.slice_dets.values())

    per = {k: times[k][1] / max(times[k][0], 1) for k in times if ':' not in k}
    ratios = dict(b_over_a=per['b'] / per['a'])
    line = f'b/a = {ratios["b_over_a"]:.2f} (input side / pure decoding, per slice)'
    if 'b0' in per:
        ratios.update(b0_over_a=per['b0'] / per['a'], b0_over_b=per['b0'] / per['b'])
        line += (f'; pre-issue-15 b0/a = {ratios["b0_over_a"]:.2f}, speed-up b0/b = '
                 f'{ratios["b0_over_b"]:.2f}, identical model inputs: {same}')
    print(line)
    if 'c' in per:
        ratios.update(c_over_b=per['c'] / per['b'], d_per_slice_ms=1e3 * per['d'],
                      d_over_c=per['d'] / per['c'])
        print(f'c/b = {ratios["c_over_b"]:.2f} (full scan / input side); d = '
              f'{ratios["d_per_slice_ms"]:.3f} ms per slice ({100 * ratios["d_over_c"]:.2f}% of '
              f'the full scan; {n_dets} detections above t_G, {n_trk} tracklets); full scan '
              f'({variants[0][0]}) {1 / per["c"]:.1f} slices/s: 928K slices (DeepLesion) in '
              f'{928e3 * per["c"] / 3600:.2f} h on this device')
    if n_dec != times['a'][0]:
        print(f'note: the input side decoded {n_dec} PNGs for {times["a"][0]} files')
    if same is False:
        print('error: the input side differs from the pre-issue-15 reference', file=sys.stderr)
    return dict(times=times, ratios=ratios, identical=same,
                seconds_per_slice={k: v for k, v in per.items() if not math.isnan(v)})


if __name__ == '__main__':
    result = main()
    raise SystemExit(1 if result['identical'] is False else 0)
