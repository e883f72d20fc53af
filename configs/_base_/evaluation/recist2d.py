# Legacy DeepLesion 2D metric on key slices (3DCE / MULAN): sensitivity at 0.5-16 FPs per image,
# IoU >= 0.5 (+1 pixel convention), each lesion counted once; also the IoBB variant.  It runs in
# the ordinary per-image ValLoop / TestLoop, so it is the validation metric of every training
# config: `_base_/datasets/deeplesion_9slice.py` (hence the 3-slice dataset and all the paper and
# synthetic configs) inherits these two settings.  To select checkpoints by it during training:
#   default_hooks = dict(checkpoint=dict(save_best='recist2d/sens@4', rule='greater'))
# P3D on complete annotation sets runs by volume scan (`_base_/evaluation/p3d_volume_scan.py`,
# `tools/test.py CONFIG CKPT --eval p3d --ann Revised-Test1071.pkl`).
val_evaluator = dict(
    type='Recist2DMetric',
    ann_file=None,  # None: the lesions of the data samples (loaded after the resize)
    criteria=('iou', 'iobb'),
    iou_thr=0.5,
    fp_points=[0.5, 1, 2, 4, 8, 16],  # FPs per image
    interp='extrapolate')
test_evaluator = val_evaluator
