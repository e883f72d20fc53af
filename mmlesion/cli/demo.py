"""``make demo``: the pipeline end to end on built-in synthetic DeepLesion-format data, on a CPU.

Stages (each skipped when its outputs are already there and up to date, so a re-run is quick):

1. generate  DeepLesion-format CT data (16-bit PNG slices, DL_info.csv, complete ground truth)
2. convert   DL_info.csv -> COCO-style train/val/test.json
3. load      DeepLesionDataset with the 9-slice pipeline: summary + montage PNG
4. train     MSCN-HNSL (CPU-sized config) on the RECIST marks R and the complete marks of V_M
             (round 1's training set of the harvest), checkpoint + loss-curve PNG
5. evaluate  2D RECIST sensitivity on the validation key slices; P3D (volume scan + Kalman
             stacking) on the completely annotated test sub-volumes, FROC PNG, overlay PNGs
6. harvest   lesion harvesting rounds (tools/harvest_round.py) from that LPG: the LPC, harvested
             lesions and hard negatives, the finetuned LPG; Table I and II in
             harvest/round_{i}/tables.txt
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time
from typing import List, Optional

import numpy as np

from mmlesion.utils.fileio import atomic_dump_json

TRAIN_DIR = 'mscn_hnsl'  # under the work dir, beside data/
# resolved by mmlesion.utils.locations.resolve_config: this path under the working directory
# (a checkout), else the copy installed with the package (mmlesion/.mim/configs)
DEMO_CONFIG = 'configs/synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py'
HARVEST_CONFIG = 'configs/harvest/harvest_mscn-hnsl_lpc-multiview_2rounds_synthetic.py'
HARVEST_DIR = 'harvest'  # under the work dir
# round 1's LPG training set (R and the V_M marks), under data/annotations/
ROUND1_ANN = 'train_r_vm.json'
TRAINED_ON = 'trained_on.json'  # in the LPG's work dir: the training file's SHA-256


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='mmlesion demo on synthetic DeepLesion-format data')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='where data, checkpoints, tables and figures go (default '
                        'work_dirs/demo; a re-run reuses what is there)')
    parser.add_argument('--volumes', type=int, default=600, help='synthetic sub-volumes')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic data (default 0; the training seed is the '
                        "config's randomness.seed)")
    parser.add_argument('--image-size', type=int, default=256, help='nominal slice size, px')
    parser.add_argument('--anatomy', choices=('auto', 'real', 'phantom'), default='auto',
                        help="real: synthetic lesions inserted into the two real chest CTs (needs "
                        "them: tools/fetch_real_ct.py); phantom: analytic phantoms; "
                        "auto (default): real when the real CT is found, else phantom")
    parser.add_argument('--real-ct-dir', default=None,
                        help='folder with lung{1,2}_{image,label}.nrrd (default: '
                        '$MMLESION_REAL_CT_DIR, $MMLESION_SHARED_DATA/real_ct, <cache>/real_ct or '
                        '../shared/data/real_ct; see mmlesion.utils.locations)')
    parser.add_argument('--config', default=None,
                        help=f'default: {DEMO_CONFIG} (from the working directory, else the copy '
                        'installed with mmlesion)')
    parser.add_argument('--epochs', type=int, default=None, help='override the config epochs')
    parser.add_argument('--skip-train', action='store_true', help='stop after the data stages')
    parser.add_argument('--harvest-config', default=None, help=f'default: {HARVEST_CONFIG}')
    parser.add_argument('--harvest-rounds', type=int, default=None,
                        help='harvest rounds after training (default: the harvest config\'s, 2)')
    parser.add_argument('--montage-samples', type=int, default=6,
                        help='training samples drawn in montage_9slice.png (default 6)')
    return parser.parse_args(argv)


def _banner(text: str) -> None:
    print(f'\n=== {text} ===', flush=True)


def data_cfg_options(data_root: str) -> List[str]:
    """--cfg-options that point the synthetic config at ``data_root`` (with annotations/)."""
    data_root = data_root.rstrip('/') + '/'
    return [f'data_root={data_root}'] + [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


def resolve_anatomy(anatomy: str, real_ct_dir: Optional[str]) -> str:
    """``auto`` -> ``real`` when the real chest CTs are found, else ``phantom`` (said so)."""
    if anatomy != 'auto':
        return anatomy
    from mmlesion.utils.locations import find_real_ct_dir
    try:
        find_real_ct_dir(real_ct_dir)
    except FileNotFoundError as e:
        from mmlesion.cli.fetch_real_ct import HOW_TO_FETCH, default_dest
        print(f'[generate] real CT not found ({e}); using phantom anatomy')
        print(f'[generate] to use the two real chest CTs, put them in {default_dest()} with '
              f'{HOW_TO_FETCH}; then run the demo again')
        return 'phantom'
    return 'real'


def stage_generate(args, data_root: str) -> dict:
    from mmlesion.synthetic import generate_dataset
    wanted = dict(num_volumes=args.volumes, seed=args.seed, image_size=args.image_size,
                  anatomy=args.anatomy)
    summary_path = osp.join(data_root, 'summary.json')
    if osp.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        recorded = dict(num_volumes=summary.get('volumes'), seed=summary.get('seed'),
                        image_size=summary.get('image_size'),
                        anatomy=summary.get('anatomy', 'phantom'))
        if recorded == wanted:
            print(f'[generate] {data_root} already holds this dataset; kept')
            return summary
    t0 = time.time()
    summary = generate_dataset(data_root, overwrite=True, real_ct_dir=args.real_ct_dir, **wanted)
    # a model trained on the previous data must neither be kept nor resumed
    stale = osp.join(osp.dirname(osp.abspath(data_root)), TRAIN_DIR)
    if osp.isdir(stale):
        shutil.rmtree(stale)
        print(f'[generate] removed {stale}: it was trained on the previous data')
    print(f'[generate] {args.volumes} {args.anatomy} sub-volumes in {time.time() - t0:.1f} s '
          f'-> {data_root}')
    return summary


def stage_convert(data_root: str) -> dict:
    from mmlesion.datasets.converters.deeplesion import convert_deeplesion
    return convert_deeplesion(data_root, osp.join(data_root, 'annotations'))


def harvest_config(args, data_root: str, checkpoint: Optional[str] = None):
    """The demo's harvest config pointed at ``data_root`` (and, once trained, at the demo's
    LPG as round 1's)."""
    from mmengine.config import Config
    cfg = Config.fromfile(args.harvest_config)
    d = data_root.rstrip('/') + '/'
    h = cfg.harvest
    h.update(image_root=d + 'Images_png/', series_info=d + 'DL_info.csv',
             train_ann=d + 'annotations/train.json',
             v_m_ann=d + 'ground_truth/Revised-Train-VM.pkl',
             v_h_test_ann=d + 'ground_truth/Revised-Train-VHtest.pkl',
             test_ann=d + 'ground_truth/Revised-Test.pkl')
    h.lpg.config = args.config
    h.lpg.cfg_options = dict(h.lpg.get('cfg_options') or {}, data_root=d)
    if checkpoint is not None:
        h.lpg.round1_checkpoint = checkpoint
        h.lpg.round1_train_ann = osp.join(data_root, 'annotations', ROUND1_ANN)
    if args.harvest_rounds is not None:
        h.rounds = int(args.harvest_rounds)
    return cfg


def stage_round1_set(args, data_root: str) -> dict:
    """Write round 1's training set (R and the complete marks of V_M), which the LPG trains on."""
    from mmlesion.harvest import HarvestRunner
    path = osp.join(data_root, 'annotations', ROUND1_ANN)
    runner = HarvestRunner(harvest_config(args, data_root), osp.join(args.work_dir, HARVEST_DIR))
    runner.round1_training_file(path)
    with open(path) as f:
        coco = json.load(f)
    n = dict(images=len(coco['images']), lesions=len(coco['annotations']),
             complete_volumes=sum(bool(v.get('complete')) for v in coco['volumes']))
    print(f'[convert] R and the V_M marks: {n["lesions"]} lesions on {n["images"]} slices '
          f'({n["complete_volumes"]} completely annotated volumes) -> {path}')
    return n


def stage_harvest(args, data_root: str, checkpoint: str) -> list:
    from mmlesion.harvest import HarvestRunner
    cfg = harvest_config(args, data_root, checkpoint)
    work = osp.join(args.work_dir, HARVEST_DIR)
    t0 = time.time()
    reports = HarvestRunner(cfg, work).run()
    print(f'[harvest] {len(reports)} round(s) in {time.time() - t0:.0f} s -> {work}; tables: '
          f'{osp.join(work, f"round_{len(reports)}", "tables.txt")}')
    return reports


def montage_pipeline(test_pipeline: List[dict]) -> List[dict]:
    """The test pipeline with the boxes loaded right after the image, so they are resized with it.

    Deterministic inputs (no training augmentation) for the summary and the montage.  Test
    pipelines load boxes after resizing on purpose (metrics score in original pixels), which
    would draw them at original-pixel positions on the resized image.
    """
    ann = [t for t in test_pipeline if t['type'] == 'LoadLesionAnnotations']
    rest = [t for t in test_pipeline if t['type'] != 'LoadLesionAnnotations']
    return rest[:1] + ann + rest[1:]


def stage_load(args, cfg_options: List[str], work_dir: str) -> dict:
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    from mmlesion.visualization import multislice_row, save_montage

    cfg = Config.fromfile(args.config)
    opts = argparse.ArgumentParser()
    opts.add_argument('--o', nargs='+', action=DictAction)
    cfg.merge_from_dict(opts.parse_args(['--o'] + cfg_options).o)
    init_default_scope('mmdet')
    report = {}
    for split in ('train', 'val', 'test'):
        ds_cfg = cfg[f'{split}_dataloader'].dataset.copy()
        ds_cfg.pipeline = montage_pipeline(cfg.test_dataloader.dataset.pipeline)
        ds = DATASETS.build(ds_cfg)
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        n_pos = sum(sum(not x.get('hard_negative') for x in d['instances']) for d in infos)
        n_neg = sum(sum(bool(x.get('hard_negative')) for x in d['instances']) for d in infos)
        spacing = np.array([d['spacing'][0] for d in infos]) if infos else np.zeros(1)
        intervals = sorted({d['slice_interval'] for d in infos if d['slice_interval']})
        report[split] = dict(images=len(ds), lesions=n_pos, hard_negatives=n_neg,
                             volumes=len({d['volume_id'] for d in infos}),
                             spacing_mm=[float(spacing.min()), float(spacing.max())],
                             slice_intervals_mm=intervals)
        print(f'[load] {split:5s}: {len(ds):4d} key slices, {n_pos:4d} lesions, {n_neg} hard '
              f'negatives, {report[split]["volumes"]:3d} sub-volumes, pixel spacing '
              f'{spacing.min():.2f}-{spacing.max():.2f} mm, slice intervals {intervals} mm')
        if split == 'train':
            window = next(t['window_hu'] for t in ds_cfg.pipeline
                          if t['type'] == 'LoadMultiSliceFromFile')
            rows = []
            for i in range(min(args.montage_samples, len(ds))):
                sample = ds[i]
                img = sample['inputs'].numpy().transpose(1, 2, 0)
                ds_i = sample['data_samples']
                boxes = ds_i.gt_instances.bboxes
                boxes = boxes.tensor.numpy() if hasattr(boxes, 'tensor') else np.asarray(boxes)
                rows.append(multislice_row(
                    img, boxes, title=f'{ds_i.volume_id} slice {ds_i.slice_index} '
                    f'({ds_i.slice_interval:g} mm)', input_window_hu=window))
                report['input_shape'] = list(sample['inputs'].shape)
            montage = osp.join(work_dir, 'montage_9slice.png')
            save_montage(montage, rows)
            print(f'[load] input tensor C x H x W = {report["input_shape"]}; montage -> {montage}')
    return report


def stage_train(args, cfg_options: List[str], work_dir: str) -> str:
    from mmengine.config import Config

    from mmlesion.cli.train import main as train_main
    from mmlesion.harvest.state import file_sha256
    from mmlesion.visualization import plot_loss_curves, read_scalars

    train_dir = osp.join(work_dir, TRAIN_DIR)
    cfg = Config.fromfile(args.config)
    epochs = args.epochs or cfg.train_cfg.max_epochs
    final = osp.join(train_dir, f'epoch_{epochs}.pth')
    train_ann = osp.join(work_dir, 'data', 'annotations', ROUND1_ANN)
    wanted = dict(ann_file=ROUND1_ANN, sha256=file_sha256(train_ann))
    marker = osp.join(train_dir, TRAINED_ON)
    recorded = None
    if osp.exists(marker):
        with open(marker) as f:
            recorded = json.load(f)
    if osp.isdir(train_dir) and recorded != wanted:
        # trained on another training set (an older demo trained on R alone): not round 1's
        shutil.rmtree(train_dir)
        print(f'[train] removed {train_dir}: it was not trained on {ROUND1_ANN}')
    if osp.exists(final):
        print(f'[train] {final} exists; kept (delete {train_dir} to retrain)')
    else:
        t0 = time.time()
        # the cosine schedule (param_scheduler[1]) must end with training; no validation inside
        # the training run: stage 5 scores the validation set with the final checkpoint anyway
        opts = cfg_options + [f'train_cfg.max_epochs={epochs}', f'param_scheduler.1.end={epochs}',
                              f'train_cfg.val_begin={epochs + 1}',
                              f'train_dataloader.dataset.ann_file=annotations/{ROUND1_ANN}']
        # resume if an interrupted demo left checkpoints behind
        resume = ['--resume'] if osp.exists(osp.join(train_dir, 'last_checkpoint')) else []
        train_main([args.config, '--work-dir', train_dir, *resume, '--cfg-options', *opts])
        atomic_dump_json(wanted, marker)
        print(f'[train] {epochs} epochs in {time.time() - t0:.0f} s -> {final}')
    curve = osp.join(work_dir, 'loss_curves.png')
    series = plot_loss_curves(read_scalars(train_dir), curve, title='MSCN-HNSL on synthetic data')
    print(f'[train] loss {series["loss"][0]:.3f} -> {series["loss"][-1]:.3f}; curves -> {curve}')
    return final


def stage_evaluate(args, cfg_options: List[str], work_dir: str, data_root: str,
                   checkpoint: str) -> dict:
    from mmlesion.cli.eval_p3d import main as eval_p3d_main
    from mmlesion.cli.test import main as test_main

    common = ['--trust-checkpoint']  # the demo trained it in its own work dir
    val_opts = cfg_options + ['test_dataloader.dataset.ann_file=annotations/val.json']
    recist = test_main([args.config, checkpoint, '--eval', 'recist2d', *common,
                        '--work-dir', osp.join(work_dir, 'eval_val_recist2d'),
                        '--cfg-options', *val_opts])
    complete_test = osp.join(data_root, 'ground_truth', 'Revised-Test.pkl')
    det = osp.join(work_dir, 'detections_test_lh.pkl')
    p3d = test_main([args.config, checkpoint, '--eval', 'p3d', '--ann', complete_test, *common,
                     '--out', det, '--show-dir', osp.join(work_dir, 'overlays'),
                     '--work-dir', osp.join(work_dir, 'eval_test_p3d'),
                     '--cfg-options', *cfg_options])
    froc_png = osp.join(work_dir, 'froc_p3d_test.png')
    # real-anatomy data: real vs synthetic lesions; phantoms: by organ
    by = 'origin' if args.anatomy == 'real' else 'organ'
    summary = eval_p3d_main(['--ann', complete_test, '--det', det, '--plot', froc_png,
                             '--json-out', osp.join(work_dir, 'p3d_test.json'),
                             '--label', 'MSCN-HNSL (demo)', '--by', by, '--truth',
                             osp.join(data_root, 'ground_truth', 'truth.json')])
    print(f'[evaluate] val 2D RECIST sensitivity @4 FPs/image: '
          f'{recist.get("recist2d/sens@4", float("nan")):.3f}; test P3D AP '
          f'{p3d.get("p3d/AP", float("nan")):.3f}; FROC -> {froc_png}; overlays -> '
          f'{osp.join(work_dir, "overlays")}')
    real = summary['strata'].get('real')
    if real is not None:
        at4 = real['sensitivity'][real['fps'].index(4.0)]
        print(f'[evaluate] real lesions (the held-out patient\'s, in {real["n_gt"]} test '
              f'sub-volumes): sensitivity {at4:.3f} at 4 FPs/volume; {real["n_hit"]} of '
              f'{real["n_gt"]} hit by some tracklet')
    return dict(recist2d_val=recist, p3d_test=p3d, p3d_summary=summary)


def main(argv: Optional[List[str]] = None) -> dict:
    from mmlesion.utils.locations import resolve_config
    args = parse_args(argv)
    t_start = time.time()
    # before any work: a missing config should not cost a data generation first
    args.config = resolve_config(args.config or DEMO_CONFIG)
    args.harvest_config = resolve_config(args.harvest_config or HARVEST_CONFIG)
    work_dir = args.work_dir = osp.abspath(args.work_dir)
    data_root = osp.join(work_dir, 'data')
    os.makedirs(work_dir, exist_ok=True)
    args.anatomy = resolve_anatomy(args.anatomy, args.real_ct_dir)
    cfg_options = data_cfg_options(data_root)
    results = {}
    times = {}

    def timed(name, fn, *a):
        t0 = time.time()
        out = fn(*a)
        times[name] = round(time.time() - t0, 1)
        return out

    _banner('1/6 generate synthetic DeepLesion-format data')
    results['generate'] = timed('generate', stage_generate, args, data_root)
    _banner('2/6 convert DL_info.csv to COCO-style JSON')
    results['convert'] = timed('convert', stage_convert, data_root)
    results['round1_set'] = timed('round1_set', stage_round1_set, args, data_root)
    _banner('3/6 load 9-slice samples')
    results['load'] = timed('load', stage_load, args, cfg_options, work_dir)
    if not args.skip_train:
        _banner('4/6 train MSCN-HNSL on CPU (R and the V_M marks)')
        results['checkpoint'] = timed('train', stage_train, args, cfg_options, work_dir)
        _banner('5/6 evaluate: 2D RECIST (val key slices), P3D (complete test volumes)')
        results['evaluate'] = timed('evaluate', stage_evaluate, args, cfg_options, work_dir,
                                    data_root, results['checkpoint'])
        _banner('6/6 harvest: LPC, harvested lesions and hard negatives, finetuned LPG')
        results['harvest'] = timed('harvest', stage_harvest, args, data_root,
                                   results['checkpoint'])
    results['seconds'] = times
    print('\nstage times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in times.items()))
    print(f'demo finished in {time.time() - t_start:.0f} s; outputs in {work_dir}')
    return results
