# The two-stage 3D false-positive reduction (configs/fpr3d/, docs/method.md#fpr3d) at the CPU size
# of the demo: stage 1 the synthetic MSCN-HNSL (the screening LPG), stage 2 the tiny 3D LPC on
# (25, 60, 60) cubes; measured in docs/results.md#fpr3d.
#   tools/test.py THIS_CONFIG work_dirs/demo/mscn_hnsl/epoch_24.pth --eval p3d \
#       --ann work_dirs/demo/data/ground_truth/Revised-Test.pkl --trust-checkpoint
_base_ = ['../../synthetic/mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
          '../../_base_/evaluation/p3d_volume_scan.py']

load_from = 'work_dirs/demo/mscn_hnsl/epoch_24.pth'  # stage 1 (make demo trains it)
classifier = dict(
    config='configs/lpc/synthetic/lpc-3d_resnet18-tiny-cube25x60x60_1xb16-5e_synthetic.py',
    checkpoint='work_dirs/lpc-3d_resnet18-tiny-cube25x60x60_1xb16-5e_synthetic/epoch_5.pth',
    trust_checkpoint=True,  # trained here by tools/train.py
    batch_size=32)

test_cfg = dict(
    _delete_=True,
    type='VolumeScanTestLoop',
    score_thr=0.1,  # t_G, as every synthetic scan
    link_iou=0.8,
    extend=1,
    fuse_iou=0.8,
    batch_size=8,
    ann_file=None,
    series_info=None,
    num_workers=1,
    rescore=classifier)
test_evaluator = {{_base_.p3d_test_evaluator}}
