# CenterNet 3-slice baseline on the synthetic data: the synthetic MSCN's network and schedule on
# one 3-channel image [key - 2 mm, key, key + 2 mm], no 3D context fusion, no hard negatives
# (as configs/centernet_3slice.py is to configs/mscn.py).
_base_ = ['./mscn-hnsl_densenet-tiny-9slice_1xb8-cpu_synthetic.py']

num_slices = 3
model = dict(backbone=dict(num_slice_groups=1, fusion_levels=()))
# the synthetic MSCN pipelines with 3 slices (pipelines are lists: written out whole)
train_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=2.0,
         window_hu={{_base_.window_hu}}, cache_samples=1000),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='RandomChoice', transforms=[
        [dict(type='RescaleToSpacing', target_spacing_mm=spacing, max_size=size)]
        for spacing, size in ((1.1, 208), (1.2, 192), (1.3, 176))]),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='RandomLesionCrop', crop_size=128, lesion_prob=0.9),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=2.0,
         window_hu={{_base_.window_hu}}),
    dict(type='RescaleToSpacing', target_spacing_mm=1.2, max_size=192),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, drop_hard_negatives=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
