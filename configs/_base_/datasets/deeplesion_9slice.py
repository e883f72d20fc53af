# DeepLesion, 9-slice (2.5D) inputs: 9 slices at 2 mm = 3 groups of 3 channels (MULAN), HU window
# [-1024, 3071] -> [0, 255], pixel spacing normalised to 0.8 mm/px, long side capped at 512
# (docs/method.md#data-input).  Validation and test: the legacy 2D metric on key slices, from
# the base below.
_base_ = '../evaluation/recist2d.py'

dataset_type = 'DeepLesionDataset'
data_root = 'data/DeepLesion/'
# relative to data_root: train/val/test.json from tools/convert_deeplesion.py
ann_root = 'annotations/'
backend_args = None

num_slices = 9
slice_interval_mm = 2.0
window_hu = (-1024, 3071)
target_spacing_mm = 0.8
max_size = 512

train_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=slice_interval_mm,
         window_hu=window_hu, backend_args=backend_args),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='RescaleToSpacing', target_spacing_mm=target_spacing_mm, max_size=max_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=slice_interval_mm,
         window_hu=window_hu, backend_args=backend_args),
    dict(type='RescaleToSpacing', target_spacing_mm=target_spacing_mm, max_size=max_size),
    # after the resize: ground truth stays in the original image frame for evaluation
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_root + 'train.json',
        data_prefix=dict(img='Images_png/'),
        drop_noisy=True,
        filter_cfg=dict(filter_empty_gt=True, min_size=2),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_root + 'val.json',
        data_prefix=dict(img='Images_png/'),
        drop_noisy=True,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_root + 'test.json',
        data_prefix=dict(img='Images_png/'),
        drop_noisy=True,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
