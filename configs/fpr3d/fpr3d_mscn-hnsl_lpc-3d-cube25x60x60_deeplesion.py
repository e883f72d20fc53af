# Two-stage 3D false-positive reduction on DeepLesion (convnet3d's shape, docs/method.md#fpr3d):
# stage 1 screens candidates -- the LPG (MSCN-HNSL) scans every slice and Kalman-stacks its
# detections into 3D proposals; stage 2 -- the 3D ResNet-18 LPC on a (25, 60, 60) cube around
# each proposal -- re-scores them, s = s_g * s_c, boxes kept (no regression, as the seed).
# Ours: the seed screens with a small 3D CNN on (15, 30, 30) patches of a fully 3D CTA; DeepLesion
# gives 2D RECIST marks on key slices of +-30 mm slabs with 1-5 mm slices and lesions of 5-350 mm,
# which the project's 2.5D LPG (9 slices at 2 mm) is trained for and a (15, 30, 30) window is not.
#   tools/test.py configs/fpr3d/fpr3d_mscn-hnsl_lpc-3d-cube25x60x60_deeplesion.py \
#       work_dirs/mscn_hnsl/epoch_8.pth --eval p3d --ann Revised-Test1071.pkl --out det.pkl
_base_ = ['../mscn_hnsl.py', '../_base_/evaluation/p3d_volume_scan.py']

# stage 1: the screening detector is this config's model; its weights (tools/test.py's
# CHECKPOINT argument replaces load_from)
load_from = 'work_dirs/mscn_hnsl/epoch_8.pth'
# stage 2: the classifier and its weights (tools/train.py on the classifier config)
classifier = dict(
    config='configs/lpc/lpc-3d_resnet18-cube25x60x60_1xb32-10e_deeplesion.py',
    checkpoint='work_dirs/lpc-3d_resnet18-cube25x60x60_1xb32-10e_deeplesion/epoch_10.pth',
    # a checkpoint your own tools/train.py wrote (full pickle); False for downloaded weights
    trust_checkpoint=True,
    batch_size=32)  # proposals per forward pass

test_cfg = dict(
    _delete_=True,
    type='VolumeScanTestLoop',
    score_thr=0.1,  # t_G: the screening stage keeps slice detections above it
    link_iou=0.8,
    extend=1,
    fuse_iou=0.8,
    batch_size=8,
    ann_file=None,
    series_info=None,
    num_workers=2,
    rescore=classifier)
test_evaluator = {{_base_.p3d_test_evaluator}}
