# LPC schedule *(ours: the paper gives none)*: 10 epochs of SGD with a cosine decay after a short
# linear warm-up, validation every epoch.
max_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, by_epoch=True, eta_min=1e-5)
]
# the learning rate above is for 1 GPU x 32 proposals; --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=32)
