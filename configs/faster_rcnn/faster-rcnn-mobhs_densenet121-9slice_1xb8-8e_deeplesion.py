# Faster R-CNN 2.5D with M-OBHS (paper Table III: 38.3 AP P3D): all background kept, overlapping
# negatives (max IoU in [0.1, 0.5)) weigh 2 (OverlapBandWeightSampler).
_base_ = [
    './faster-rcnn_densenet121-9slice_1xb8-8e_deeplesion.py',
    '../_base_/models/faster-rcnn_missing-label-strategies.py'
]
model = dict(train_cfg=dict(rcnn={{_base_.mobhs_rcnn}}))
