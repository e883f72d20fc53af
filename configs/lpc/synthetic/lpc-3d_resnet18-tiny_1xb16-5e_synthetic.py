# The 3D LPC (paper Fig. 5b's 3D ablation) at the CPU size of the synthetic multi-view config.
_base_ = './lpc-multiview_resnet18-tiny_1xb16-5e_synthetic.py'

mode = 'cube'
# 32^3 voxels *(ours)*: the 3D convolutions cost ~D times the 2D ones; 32 keeps an epoch in
# minutes on the CPU
patch_size = 32
model = dict(
    _delete_=True,
    type='LPC3D',
    data_preprocessor=dict(type='LPCDataPreprocessor', mean=117.0, std=57.6),
    # the ResNet-18 layout in 3D at an eighth of the width (8 -> 64 channels)
    backbone=dict(type='ResNet3D', depth=18, in_channels=1, base_channels=8),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
train_dataloader = dict(dataset=dict(mode=mode, patch_size=patch_size))
val_dataloader = dict(dataset=dict(mode=mode, patch_size=patch_size))
test_dataloader = val_dataloader
