# MSCN without hard negatives (paper Table III: 43.0 AP P3D): hard-negative annotations are dropped
# at load time, so the HNSL head trains exactly as mmdet's CenterNetHead.
_base_ = './mscn-hnsl_densenet121-9slice_1xb8-8e_deeplesion.py'

train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
