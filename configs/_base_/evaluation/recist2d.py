# Legacy DeepLesion 2D metric on key slices (3DCE / MULAN): sensitivity at 0.5-16 FPs per image,
# IoU >= 0.5 (+1 pixel convention), each lesion counted once; also the IoBB variant.  Works with the
# ordinary per-image ValLoop / TestLoop, so it can select checkpoints during training.
val_evaluator = dict(
    type='Recist2DMetric', ann_file=None, criteria=('iou', 'iobb'), iou_thr=0.5,
    fp_points=[0.5, 1, 2, 4, 8, 16], interp='extrapolate')
test_evaluator = val_evaluator
