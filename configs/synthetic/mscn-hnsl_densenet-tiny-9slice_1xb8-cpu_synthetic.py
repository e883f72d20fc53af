# MSCN-HNSL sized to train on a 2-core CPU in minutes, on the built-in synthetic DeepLesion-format data
# (`tools/make_synthetic.py`, then `tools/convert_deeplesion.py`).  Same components as
# configs/mscn_hnsl.py; a narrower, shallower DenseNet (same code) and coarser pixels (1.2 mm/px,
# long side <= 192) so one iteration takes a fraction of a second.  Used by `make demo` and the tests.
_base_ = ['../mscn_hnsl.py']

data_root = 'work_dirs/demo/data/'
ann_root = 'annotations/'
num_slices = 9
target_spacing_mm = 1.2
max_size = 192
# Composite window *(ours)*: the mean of the full-range window of SPEC §1.4 with a lung and a
# soft-tissue window (mmlesion.datasets.slice_sampling.apply_window).  Learnt from scratch, the
# tiny net found no liver or mediastinal lesion behind the full window's ~16 HU per grey level;
# the composite gives soft tissue ~5x the contrast and keeps lung, fat and bone apart (300
# real-anatomy sub-volumes, 20 epochs: val sens@4 0.65 -> 0.70).
window_hu = [(-1024, 3071), (-1000, 200), (-160, 240)]

model = dict(
    # the net needs multiples of its stride 16, not 32: a 208 px batch is not padded to 224
    data_preprocessor=dict(pad_size_divisor=16),
    backbone=dict(growth_rate=16, block_config=(2, 4, 6), num_init_features=32),
    neck=dict(in_channels=[64, 96, 144], out_channels=32, feat_channels=64),
    # wh weight 1 instead of the paper's 0.1 *(ours, synthetic only)*: at 1.2 mm/px the lesions
    # are ~4 cells of the stride-4 map, so the L1 wh term (in cells) is tiny next to the heatmap
    # loss and with 0.1 the boxes stay badly sized (300 synthetic volumes, 20 epochs, val sens@4
    # at IoU 0.5: 0.34 with 0.1 and an unfinished cosine, 0.42 with 1.0 and the cosine finished)
    bbox_head=dict(in_channels=32, feat_channels=32, loss_wh=dict(type='L1Loss', loss_weight=1.0)),
    # CenterNet's flip test (LesionCenterNet): heatmaps of the image and its mirror averaged.
    # Same checkpoints, val sens at 0.5 / 1 / 4 FPs per image without -> with it: 0.752 / 0.759
    # / 0.818 -> 0.759 / 0.781 / 0.839 (20 epochs), 0.737 / 0.796 / 0.839 -> 0.766 / 0.818 /
    # 0.839 (24 epochs), 0.679 / 0.708 / 0.759 -> 0.701 / 0.723 / 0.752 (stop-7 model)
    test_cfg=dict(topk=50, local_maximum_kernel=3, max_per_img=50, flip_test=True))

train_pipeline = [
    # every training key slice decoded and windowed once, in the persistent data worker (the
    # demo's 589 slices hold ~1.4 GB there); a sample then costs the worker 3.3 ms, not 22
    dict(type='LoadMultiSliceFromFile', num_slices=num_slices, slice_interval_mm=2.0,
         window_hu=window_hu, cache_samples=1000),
    dict(type='LoadLesionAnnotations', with_bbox=True),
    # A few hundred key slices are memorised within 20 epochs (train sens@4 0.90, val 0.42), so the
    # synthetic config augments *(ours)*: spacing jitter around the test spacing (multi-scale
    # training; test time stays at target_spacing_mm) and flips in both axes (phantoms: val
    # sens@4 0.42 -> 0.56).  The jitter is kept within +-8%: a batch is padded to its largest
    # image, so a wider one (1.0-1.44 mm) cost 1.25x the time for no better result.
    dict(type='RandomChoice', transforms=[
        [dict(type='RescaleToSpacing', target_spacing_mm=spacing, max_size=size)]
        for spacing, size in ((1.1, 208), (target_spacing_mm, max_size), (1.3, 176))]),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    # 128 px (154 mm) training crops *(ours)*, 9 in 10 around a random lesion: a third of the
    # pixels of a 208 px batch, so an iteration costs 0.37-0.52 s instead of 1.19 s on a 2-core
    # AVX2 CPU, and the random placement is one more augmentation.  Testing stays on whole
    # images.  24 epochs of crops train in 735-821 s there, where 20 epochs of whole images
    # would take ~1,760 s (val sens@4 0.825-0.869 in four trainings vs 0.788-0.839 before).
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
# cosine schedule ends with max_epochs: the learning rate must reach eta_min for the boxes to
# settle (change the epochs here; --cfg-options train_cfg.max_epochs leaves the cosine end alone;
# tools/demo.py --epochs moves both).  Tuned on `make demo`'s 600 real-anatomy sub-volumes
# (val sens@4 FPs/image): 300 sub-volumes x 20 epochs 0.70; 600 x 12 0.74; narrower jitter,
# lr 3e-3, 600 x 14 0.77 in 713 s, 600 x 16 0.76.  Then channels-last weights and 208 px
# instead of 224 px batches made an iteration ~20% cheaper: 600 x 20 0.82 (24 epochs: 0.84, but
# `make demo` would take over 20 min).  Then 128 px lesion crops: 600 x 24 0.825-0.869 over four
# trainings (0.847 with the seed below) in 12-14 min of training on a 2-core AVX2 CPU.
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
# NHWC weights (tools/benchmarks/bench_train.py): training x1.4 and inference x1.6 on a 2-core
# AVX-512 CPU; on a 2-core AVX2 CPU training x1.0-1.1 (128 px crops) and inference x1.1-1.8
custom_hooks = [dict(type='MemoryFormatHook', memory_format='channels_last')]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=10, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(window_size=10)
