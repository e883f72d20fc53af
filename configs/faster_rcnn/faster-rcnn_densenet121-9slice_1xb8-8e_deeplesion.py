# Faster R-CNN 2.5D, 9-slice, on DeepLesion's RECIST marks (paper Table III: 34.2 AP P3D).
# Same data pipeline, schedule and P3D evaluation (`tools/test.py CONFIG CKPT --eval p3d`) as MSCN.
_base_ = [
    '../_base_/models/faster-rcnn_densenet121-9slice.py', '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]
# harvest rounds' hard negatives are for the HNSL only (paper: HNSL is not compatible with
# two-stage anchor-based detectors); positives harvested into the file (P_H^+) are kept
train_dataloader = dict(dataset=dict(drop_hard_negatives=True))
