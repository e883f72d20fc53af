# M3DCF-style one-stage multi-scale 3D-context-fusion detector on DeepLesion
# (docs/method.md#m3dcf): 2.5D DenseNet-121 over 3 slice groups fused at all three levels, FPN,
# ATSS head.  Same data, schedule and P3D evaluation as MSCN (configs/mscn_hnsl.py), so the
# rows of Table III compare.  Not trained on DeepLesion by this project (docs/results.md#m3dcf).
_base_ = [
    '../_base_/models/m3dcf_densenet121_atss.py', '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]
# a one-stage head without HNSL: hard-negative annotations are not training boxes
train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
