# MSCN with the hard-negative suppression loss: the Lesion Harvester LPG
# (paper Table III: 51.9 AP P3D).
# Hard negatives come from the annotation files (`hard_negative: true`, written by harvest rounds);
# with none present the HNSL head equals plain CenterNet.
_base_ = [
    '../_base_/models/mscn_densenet121.py', '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/schedule_8e.py', '../_base_/default_runtime.py'
]
