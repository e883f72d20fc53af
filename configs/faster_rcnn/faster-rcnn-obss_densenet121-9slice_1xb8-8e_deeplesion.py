# Faster R-CNN 2.5D with OBSS (Wu et al., BMVC 2019; paper Table III: 36.3 AP P3D): all background
# kept, each negative weighted by the soft-sampling Gompertz curve of its max IoU
# (OverlapSoftSampler).
_base_ = [
    './faster-rcnn_densenet121-9slice_1xb8-8e_deeplesion.py',
    '../_base_/models/faster-rcnn_missing-label-strategies.py'
]
model = dict(train_cfg=dict(rcnn={{_base_.obss_rcnn}}))
