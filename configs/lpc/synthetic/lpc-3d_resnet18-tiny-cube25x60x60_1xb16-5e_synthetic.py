# The two-stage detector's false-positive reduction classifier (configs/fpr3d/synthetic/) at the
# CPU size of the synthetic 3D LPC: the seed's (25, 60, 60) cube (z, y, x) instead of 32^3.
_base_ = './lpc-3d_resnet18-tiny_1xb16-5e_synthetic.py'

patch_size = (25, 60, 60)  # the convnet3d seed's FP-reduction input (docs/method.md#fpr3d)
train_dataloader = dict(dataset=dict(patch_size=patch_size))
val_dataloader = dict(dataset=dict(patch_size=patch_size))
test_dataloader = val_dataloader
