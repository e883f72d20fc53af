# The synthetic Faster R-CNN 2.5D with M-OBHS (OverlapBandWeightSampler);
# the strategy as in configs/faster_rcnn/ (docs/method.md#missing-labels).
_base_ = [
    './faster-rcnn_densenet-tiny-9slice_1xb8-cpu_synthetic.py',
    '../_base_/models/faster-rcnn_missing-label-strategies.py'
]
model = dict(train_cfg=dict(rcnn={{_base_.mobhs_rcnn}}))
