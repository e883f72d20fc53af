# CenterNet 3-slice baseline (paper Table III: 41.0 AP P3D): DenseNet-121 on one 3-channel image
# [key - 2 mm, key, key + 2 mm], no 3D context fusion, no hard negatives.
_base_ = [
    '../_base_/models/mscn_densenet121.py', '../_base_/datasets/deeplesion_3slice.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(num_slice_groups=1, fusion_levels=()))
train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
