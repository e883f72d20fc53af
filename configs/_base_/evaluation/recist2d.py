# Legacy DeepLesion 2D metric on key slices (3DCE / MULAN): sensitivity at 0.5-16 FPs per image,
# IoU >= 0.5 (+1 pixel convention), each lesion counted once; also the IoBB variant.  Works with the
# ordinary per-image ValLoop / TestLoop, so it can select checkpoints during training:
#   _base_ = ['../mscn_hnsl.py', '../_base_/evaluation/recist2d.py']
#   val_evaluator = {{_base_.recist2d_evaluator}}
#   default_hooks = dict(checkpoint=dict(save_best='recist2d/sens@4'))
recist2d_evaluator = dict(
    _delete_=True,
    type='Recist2DMetric',
    ann_file=None,  # None: the lesions of the data samples (loaded after the resize)
    criteria=('iou', 'iobb'),
    iou_thr=0.5,
    fp_points=[0.5, 1, 2, 4, 8, 16],  # FPs per image
    interp='extrapolate')
