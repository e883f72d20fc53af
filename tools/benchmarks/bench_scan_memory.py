"""Long-scan behaviour, measured side by side in one run: peak resident memory of volume scans of
N and 4N synthetic sub-volumes (it must not grow with the number of volumes), and the time a
kill -9 at half of a scan costs when the rerun resumes from the per-volume records.

    python tools/benchmarks/bench_scan_memory.py --volumes 100 --work-dir work_dirs/bench_scan_mem

Each scan runs in its own process (a small random MSCN, t_G 0.05, the 9-slice test pipeline),
so peak RSS (``ru_maxrss``) is that scan's alone; data generation happens before, in another
process.  Prints one table.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

SCAN = r'''
import json, resource, sys, time
from mmengine.config import Config
from mmengine.runner import Runner
import mmlesion  # noqa: F401
cfg = json.load(open(sys.argv[1]))
t0 = time.time()
runner = Runner.from_cfg(Config(cfg))
runner.test()
loop = runner.test_loop
print(json.dumps(dict(seconds=time.time() - t0, volumes=len(loop.all_volumes),
                      scanned=len(loop.inputs), slices=loop.num_slices,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''

PIPELINE = [
    dict(type='LoadMultiSliceFromFile', num_slices=9, slice_interval_mm=2.0,
         window_hu=(-1024, 3071)),
    dict(type='RescaleToSpacing', target_spacing_mm=0.8, max_size=512),
    dict(type='PackLesionInputs'),
]
MODEL = dict(
    type='LesionCenterNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[50.0], std=[1.0], bgr_to_rgb=False,
                           pad_size_divisor=16),
    backbone=dict(type='DenseNet25D', num_slice_groups=3, growth_rate=8, block_config=(2, 3, 4),
                  bn_size=2, num_init_features=16),
    neck=dict(type='LesionFPNUpsample', in_channels=[32, 40, 52], out_channels=16,
              feat_channels=16),
    bbox_head=dict(type='CenterNetHNSLHead', num_classes=1, in_channels=16, feat_channels=16),
    test_cfg=dict(topk=20, local_maximum_kernel=3, max_per_img=20, flip_test=False))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--volumes', type=int, default=100,
                   help='sub-volumes of the smaller scan; the larger one has 4 times as many')
    p.add_argument('--image-size', type=int, default=96, help='nominal slice size of the data, px')
    p.add_argument('--work-dir', default='work_dirs/bench_scan_memory',
                   help='data, configs and scan records go here')
    p.add_argument('--kill-only', action='store_true',
                   help='only the kill -9 measurement (an uninterrupted scan of the larger set '
                   'and the killed + resumed one, back to back under the same load)')
    return p.parse_args(argv)


def _data(root, volumes, size):
    if not osp.isfile(osp.join(root, 'annotations', 'train.json')):
        code = ('from mmlesion.synthetic import generate_dataset; '
                'from mmlesion.datasets.converters.deeplesion import convert_deeplesion; '
                f'generate_dataset({root!r}, num_volumes={volumes}, seed=5, image_size={size}, '
                'anatomy="phantom"); '
                f'convert_deeplesion({root!r}, {osp.join(root, "annotations")!r}, log=None)')
        subprocess.run([sys.executable, '-c', code], check=True)
    return root


def _config(root, work_dir, resume=True):
    return dict(
        default_scope='mmdet', model=MODEL, work_dir=work_dir, log_level='WARNING',
        randomness=dict(seed=0),
        test_dataloader=dict(
            batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='DeepLesionDataset', data_root=root + '/',
                         ann_file='annotations/train.json', data_prefix=dict(img='Images_png/'),
                         test_mode=True, pipeline=PIPELINE)),
        test_cfg=dict(type='VolumeScanTestLoop', batch_size=8, score_thr=0.05, resume=resume,
                      log_interval=10 ** 6),
        test_evaluator=dict(type='P3DMetric'))


def _scan(cfg, path, kill_after=None):
    with open(path, 'w') as f:
        json.dump(cfg, f)
    script = path + '.py'
    with open(script, 'w') as f:
        f.write(SCAN)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, script, path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    if kill_after is not None:
        records = osp.join(cfg['work_dir'], 'volume_scan')
        while proc.poll() is None:
            done = sum(len(files) for _, _, files in os.walk(records)) \
                if osp.isdir(records) else 0
            if done >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait()
        return dict(seconds=time.time() - t0, killed=proc.returncode == -signal.SIGKILL)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f'scan failed: {path}')
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for n in ((4 * args.volumes, ) if args.kill_only else (args.volumes, 4 * args.volumes)):
        root = _data(osp.abspath(osp.join(args.work_dir, f'data_{n}')), n, args.image_size)
        run = osp.abspath(osp.join(args.work_dir, f'scan_{n}'))
        rows.append((n, _scan(_config(root, run, resume=False), run + '.json')))
    large = rows[-1][1]
    print(f'{"generated":>9} {"scanned":>7} {"slices":>7} {"seconds":>8} {"peak RSS MB":>12}')
    for n, r in rows:
        print(f'{n:>9} {r["volumes"]:>7} {r["slices"]:>7} {r["seconds"]:>8.1f} '
              f'{r["peak_rss_mb"]:>12.1f}')
    if len(rows) == 2:
        small = rows[0][1]
        print(f'peak RSS ratio {large["peak_rss_mb"] / small["peak_rss_mb"]:.3f} for '
              f'{large["volumes"] / small["volumes"]:.2f}x the volumes')

    # a kill -9 at half of the larger scan, then the resumed rerun
    root = osp.abspath(osp.join(args.work_dir, f'data_{4 * args.volumes}'))
    run = osp.abspath(osp.join(args.work_dir, 'scan_killed'))
    shutil.rmtree(run, ignore_errors=True)  # records of an earlier measurement
    cfg = _config(root, run)
    half = large['volumes'] // 2
    killed = _scan(cfg, run + '.json', kill_after=half)
    resumed = _scan(cfg, run + '.json')
    extra = killed['seconds'] + resumed['seconds'] - large['seconds']
    print(f'kill -9 after {half} of {large["volumes"]} volumes ({killed["seconds"]:.1f} s, '
          f'killed={killed["killed"]}); the rerun scanned {resumed["scanned"]} volumes in '
          f'{resumed["seconds"]:.1f} s; time lost to the kill: {extra:+.1f} s over the '
          f'uninterrupted {large["seconds"]:.1f} s (process start, model build, the volume in '
          'progress)')


if __name__ == '__main__':
    main()
