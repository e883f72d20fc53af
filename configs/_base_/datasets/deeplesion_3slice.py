# DeepLesion, 3-slice inputs [key - 2 mm, key, key + 2 mm] as one 3-channel image
# (3DCE/CenterNet baseline).
_base_ = './deeplesion_9slice.py'

num_slices = 3
slice_interval_mm = 2.0
window_hu = (-1024, 3071)
target_spacing_mm = 0.8
max_size = 512

train_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=slice_interval_mm,
         window_hu=window_hu),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='RescaleToSpacing', target_spacing_mm=target_spacing_mm, max_size=max_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=slice_interval_mm,
         window_hu=window_hu),
    dict(type='RescaleToSpacing', target_spacing_mm=target_spacing_mm, max_size=max_size),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
