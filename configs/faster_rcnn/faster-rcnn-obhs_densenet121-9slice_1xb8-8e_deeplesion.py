# Faster R-CNN 2.5D with OBHS (Ren et al.; paper Table III: 17.3 AP P3D): second-stage negatives
# only from proposals with max IoU in [0.1, 0.5), background below 0.1 ignored -- mmdet's
# MaxIoUAssigner alone.
_base_ = [
    './faster-rcnn_densenet121-9slice_1xb8-8e_deeplesion.py',
    '../_base_/models/faster-rcnn_missing-label-strategies.py'
]
model = dict(train_cfg=dict(rcnn={{_base_.obhs_rcnn}}))
