# The multi-view LPC sized to train on a 2-core CPU in minutes, on proposals of the synthetic
# demo data (`make demo` / tools/demo.py writes work_dirs/demo/data/; tools/scan_proposals.py the
# proposal files below).  Same components as the DeepLesion config; a narrow ResNet-18, small
# patches, few epochs.
_base_ = '../lpc-multiview_resnet18_1xb32-10e_deeplesion.py'

data_root = 'work_dirs/demo/data/'
proposal_root = 'work_dirs/lpc/synthetic/'
# the synthetic LPG's composite window (configs/synthetic/...): its soft-tissue contrast
window_hu = [(-1024, 3071), (-1000, 200), (-160, 240)]
# 64 px views *(ours)*: a few ms of CPU per proposal and view
patch_size = 64
# 32 px margin *(ours, not the paper's 64)*: 64 px each way would shrink a 10 px lesion of the
# 256 px synthetic slices to ~3 px of a 64 px view
pad_px = 32

model = dict(
    # grey patches straight into one-channel trunks (no ImageNet weights to match)
    data_preprocessor=dict(mean=117.0, std=57.6),
    # ResNet-18 layout at a quarter of the width (16 -> 128 channels): ~0.7 M weights a trunk
    backbone=dict(in_channels=1, base_channels=16))

patch_args = dict(data_prefix=dict(img=data_root + 'Images_png/'),
                  series_info=data_root + 'DL_info.csv',
                  patch_size=patch_size, pad_px=pad_px, window_hu=window_hu)
train_dataloader = dict(
    batch_size=16,  # a few hundred iterations an epoch on the demo's proposals
    num_workers=1,
    dataset=dict(
        ann_file=proposal_root + 'proposals_train.json',
        # every training patch cut once per worker (24 KiB each, <= 480 MB): later epochs skip
        # the decoding
        cache_patches=20000,
        # and every scanned volume decoded once (<= 250 x ~4 MB at 256 px): shuffled proposals
        # would otherwise decode a volume each in the first epoch (2.7 min of the demo's 8k)
        cache_volumes=250,
        **patch_args))
val_dataloader = dict(
    batch_size=16, num_workers=1,
    dataset=dict(ann_file=proposal_root + 'proposals_val.json', **patch_args))
test_dataloader = val_dataloader

# AdamW trains the narrow net from scratch faster than SGD in 5 epochs *(ours)*
max_epochs = 5
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', begin=0, end=max_epochs, by_epoch=True, eta_min=1e-5)
]
auto_scale_lr = dict(base_batch_size=16)
# seeded: data order, flips and initialisation repeat on a given machine
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=10))
log_processor = dict(window_size=10)
