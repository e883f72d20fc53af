# 8 epochs, SGD with warm-up, steps at epochs 4 and 6 *(ours, after MULAN's schedule)*.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[4, 6], gamma=0.1)
]

# the learning rate above is for 1 GPU x 8 images; --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=8)
