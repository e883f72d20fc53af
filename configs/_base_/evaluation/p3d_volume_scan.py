# P3D evaluation by volume-wise scanning (docs/method.md#volume-scan, docs/method.md#eval-p3d):
# every slice of every sub-volume of the annotation file is detected (each PNG decoded once), the
# slice detections are Kalman-stacked into 3D tracklets and scored with the Lesion Harvester P3D
# metric.  `tools/test.py CONFIG CKPT --eval p3d` switches any config to these defaults.  To make
# them a config's own test settings:
#   _base_ = ['../mscn_hnsl.py', '../_base_/evaluation/p3d_volume_scan.py']
#   test_cfg = {{_base_.volume_scan_test_cfg}}
#   test_evaluator = {{_base_.p3d_test_evaluator}}
volume_scan_test_cfg = dict(
    _delete_=True,
    type='VolumeScanTestLoop',
    score_thr=0.1,  # t_G: keep slice detections scoring above it
    link_iou=0.8,  # IoU a detection must exceed to extend a track
    extend=1,  # bridge one-slice gaps ...
    fuse_iou=0.8,  # ... when the tracks overlap this much on the connecting slices
    batch_size=8,  # slices per forward pass
    ann_file=None,  # volumes to scan: None = the metric's ann_file, else the dataset's
    series_info=None,  # DL_info.csv / converted JSON for spacing of volumes a pickle lacks
    num_workers=2,  # processes preparing volumes while the model runs
    # the GPU path (docs/method.md#scan-gpu), off so that CPU scans keep their pinned outputs:
    cross_volume=False,  # True: fill each pass from consecutive volumes (small ones underfill)
    amp_dtype=None,  # 'bf16' / 'fp16': autocast; scores move with the precision
    channels_last=False,  # True: NHWC weights and inputs, what tensor cores prefer
    compile=False,  # True: torch.compile the network (x1.7 on an H200; compiles per shape)
    pin_memory=None)  # None: pinned inputs, non-blocking copies when the model is on CUDA
p3d_test_evaluator = dict(
    _delete_=True,
    type='P3DMetric',
    ann_file=None,  # None: the ground truth the scan read
    iou_thr=0.5,  # 2D IoU (+1 pixel convention) on the ground truth's slice
    fp_points=[0.125, 0.25, 0.5, 1, 2, 4, 8, 16],  # FPs per volume
    interp='extrapolate')  # 3DCE / Lesion Harvester; 'clamp' = MULAN
