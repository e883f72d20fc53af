# The paper's 3D ablation (Fig. 5b, s_c,3D): a 3D ResNet-18 on the padded sub-volume around each
# proposal, resampled to a cube.
_base_ = './lpc-multiview_resnet18_1xb32-10e_deeplesion.py'

mode = 'cube'
# 64^3 voxels *(ours: the paper gives no size)*: the padded extent (>= 128 px) at <= half the
# in-plane resolution, 3D activations of ResNet-18 at 32 proposals a batch fit one GPU
patch_size = 64
model = dict(
    _delete_=True,
    type='LPC3D',
    # the windowed HU cube (0..255) centred and scaled to about unit variance *(ours)*
    data_preprocessor=dict(type='LPCDataPreprocessor', mean=117.0, std=57.6),
    # torchvision-like ResNet-18 in 3D (mmlesion.models.backbones.resnet3d), one HU channel,
    # trained from scratch (no 3D ImageNet weights)
    backbone=dict(type='ResNet3D', depth=18, in_channels=1, base_channels=64),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
train_dataloader = dict(dataset=dict(mode=mode, patch_size=patch_size))
val_dataloader = dict(dataset=dict(mode=mode, patch_size=patch_size))
test_dataloader = val_dataloader
