# MSCN-HNSL sized to train on a 2-core CPU in minutes, on the built-in synthetic DeepLesion-format
# data (`tools/make_synthetic.py`, then `tools/convert_deeplesion.py`).  Same components as
# configs/mscn_hnsl.py; a narrower, shallower DenseNet (same code) and coarser pixels (1.2 mm/px,
# long side <= 192) so one iteration takes a fraction of a second.  Used by `make demo` and the
# tests.  Measurements and tuning history: docs/results.md#synthetic-config.
_base_ = ['../mscn_hnsl.py']

data_root = 'work_dirs/demo/data/'
ann_root = 'annotations/'
num_slices = 9
target_spacing_mm = 1.2
max_size = 192
# Composite window *(ours)*: the full range of docs/method.md#data-input averaged with a lung
# and a soft-tissue window, for ~5x soft-tissue contrast (docs/results.md#composite-window)
window_hu = [(-1024, 3071), (-1000, 200), (-160, 240)]

model = dict(
    # the net needs multiples of its stride 16, not 32: a 208 px batch is not padded to 224
    data_preprocessor=dict(pad_size_divisor=16),
    backbone=dict(growth_rate=16, block_config=(2, 4, 6), num_init_features=32),
    neck=dict(in_channels=[64, 96, 144], out_channels=32, feat_channels=64),
    # wh weight 1, not the paper's 0.1 *(ours)*: lesions of ~4 cells at 1.2 mm/px leave the wh
    # term too small next to the heatmap loss (docs/results.md#wh-weight)
    bbox_head=dict(in_channels=32, feat_channels=32, loss_wh=dict(type='L1Loss', loss_weight=1.0)),
    # CenterNet's flip test (LesionCenterNet): heatmaps of the image and its mirror averaged;
    # +0.01-0.03 sensitivity at 0.5-1 FPs per image (docs/results.md#flip-test)
    test_cfg=dict(topk=50, local_maximum_kernel=3, max_per_img=50, flip_test=True))

train_pipeline = [
    # every training key slice decoded and windowed once per worker: 3.3 ms a sample, not 22
    # (docs/results.md#sample-cache)
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=2.0,
         window_hu=window_hu, cache_samples=1000),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    # spacing jitter within +-8% and flips in both axes *(ours)*: a few hundred key slices are
    # otherwise memorised (docs/results.md#augmentation); test time stays at target_spacing_mm
    dict(type='RandomChoice', transforms=[
        [dict(type='RescaleToSpacing', target_spacing_mm=spacing, max_size=size)]
        for spacing, size in ((1.1, 208), (target_spacing_mm, max_size), (1.3, 176))]),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    # 128 px (154 mm) training crops *(ours)*, 9 in 10 around a random lesion: a third of the
    # pixels, same accuracy (docs/results.md#lesion-crops); testing stays on whole images
    dict(type='RandomLesionCrop', crop_size=128, lesion_prob=0.9),
    dict(type='PackLesionInputs'),
]
test_pipeline = [
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=2.0,
         window_hu=window_hu),
    dict(type='RescaleToSpacing', target_spacing_mm=target_spacing_mm, max_size=max_size),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    dict(type='PackLesionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, ann_file=ann_root + 'train.json', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file=ann_root + 'val.json', pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root=data_root, ann_file=ann_root + 'test.json', pipeline=test_pipeline))

# Adam from scratch trains the small net faster than SGD on a few hundred slices *(ours)*.  The
# cosine ends with max_epochs and must reach eta_min for the boxes to settle: change the epochs
# here (--cfg-options train_cfg.max_epochs leaves the cosine end alone; tools/demo.py --epochs
# moves both).  Epochs and lr tuned on `make demo`'s data (docs/results.md#tuning-history).
max_epochs = 24
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, by_epoch=True, eta_min=2e-5)
]
auto_scale_lr = dict(base_batch_size=8)
# seeded: `make demo` trains the same model on a given machine (data order, augmentation in the
# data worker, initialisation; CPU kernels differ between CPU types, so other machines may not)
randomness = dict(seed=0)
# NHWC weights: faster CPU training and inference (docs/results.md#channels-last)
custom_hooks = [dict(type='MemoryFormatHook', memory_format='channels_last')]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=10, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(window_size=10)
