r"""Benchmark: training and inference throughput (images/s) of a config's detector, on this device.

Random 9-slice (or 3-slice) inputs of a fixed size with a few random lesion boxes, so only the
model is measured (data loading excluded).  Prints images/s for training steps (forward + backward
+ optimizer step) and for inference; nothing is asserted.  ``--memory-format both`` (default) times
the same model with NCHW and with channels-last weights (``MemoryFormatHook``) side by side and
prints the ratios.

    python tools/benchmarks/bench_train.py CONFIG [--size 512] [--batch 2] [--iters 5] \
        [--device cpu] [--memory-format both|contiguous|channels_last]
    # e.g. the paper-sized model on 512 x 512 9-slice inputs, and the demo's CPU model:
    python tools/benchmarks/bench_train.py configs/mscn_hnsl.py --size 512 --batch 2
    python tools/benchmarks/bench_train.py \
        configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py --size 192 --batch 8
"""
import argparse
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmlesion.engine import to_memory_format


def fake_batch(batch: int, channels: int, size: int, gen: torch.Generator):
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append((torch.rand(channels, size, size, generator=gen) * 255).to(torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), pad_shape=(size, size),
                                             batch_input_shape=(size, size)))
        xy = torch.rand(3, 2, generator=gen) * (size * 0.7)
        wh = 8 + torch.rand(3, 2, generator=gen) * (size * 0.2)
        sample.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                           labels=torch.zeros(3, dtype=torch.long))
        sample.gt_hard_negatives = InstanceData(bboxes=torch.zeros(0, 4),
                                                labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=[x.float() for x in inputs], data_samples=samples)


def measure(model, data, iters: int, device: str):
    """(train images/s, inference images/s) of ``model`` on ``data`` (1 warm-up iteration)."""
    batch = len(data['inputs'])
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    model.train()
    for i in range(iters + 1):
        if i == 1:
            sync()
            t0 = time.perf_counter()
        packed = model.data_preprocessor(data, training=True)
        losses = model(**packed, mode='loss')
        loss = sum(v for v in losses.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
    sync()
    train_ips = iters * batch / (time.perf_counter() - t0)

    model.eval()
    with torch.no_grad():
        for i in range(iters + 1):
            if i == 1:
                sync()
                t0 = time.perf_counter()
            model.test_step(data)
        sync()
    infer_ips = iters * batch / (time.perf_counter() - t0)
    return train_ips, infer_ips


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='detector config file (its model is timed)')
    p.add_argument('--size', type=int, default=512, help='square input size, px')
    p.add_argument('--batch', type=int, default=2, help='images per batch (default 2)')
    p.add_argument('--iters', type=int, default=5, help='timed iterations (after 1 warm-up)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   help='torch device (default cuda when available, else cpu)')
    p.add_argument('--memory-format', default='both',
                   choices=['both', 'contiguous', 'channels_last'],
                   help='weight layout(s) to time; both: side by side, with ratios')
    args = p.parse_args(argv)

    cfg = Config.fromfile(args.config)
    init_default_scope('mmdet')
    channels = cfg.train_dataloader.dataset.pipeline[0]['num_slices']
    formats = (['contiguous', 'channels_last'] if args.memory_format == 'both'
               else [args.memory_format])
    gen = torch.Generator().manual_seed(0)
    data = fake_batch(args.batch, channels, args.size, gen)
    results = {}
    for fmt in formats:
        torch.manual_seed(0)
        model = to_memory_format(MODELS.build(cfg.model).to(args.device), fmt)
        if not results:
            n_params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f'{args.config}: {channels}-slice {args.size}x{args.size}, batch {args.batch}, '
                  f'{n_params:.2f} M parameters, device {args.device}, torch threads '
                  f'{torch.get_num_threads()}', flush=True)
        results[fmt] = train_ips, infer_ips = measure(model, data, args.iters, args.device)
        print(f'{fmt:>13}  train: {train_ips:.2f} images/s   inference: {infer_ips:.2f} images/s',
              flush=True)
    if len(results) == 2:
        (t0_, i0), (t1, i1) = results['contiguous'], results['channels_last']
        print(f'channels_last / contiguous: train x{t1 / t0_:.2f}, inference x{i1 / i0:.2f}')
    return results


if __name__ == '__main__':
    main()
