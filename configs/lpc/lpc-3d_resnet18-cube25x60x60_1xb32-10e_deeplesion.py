# The false-positive reduction stage of the two-stage 3D detector (configs/fpr3d/,
# docs/method.md#fpr3d): the 3D LPC (3D ResNet-18) on the convnet3d seed's second-stage input, a
# (25, 60, 60) voxel cube (z, y, x) around each candidate.  Trained like every LPC on the LPG's
# proposals of the training volumes (docs/proposals.md#commands).
_base_ = './lpc-3d_resnet18_1xb32-10e_deeplesion.py'

# the seed's FP-reduction cube, (z, y, x) voxels.  Ours: it spans the proposal's padded extent
# (the LPC's rule, same mm on every axis), not a fixed voxel count of the native scan, since
# DeepLesion lesions range 5-350 mm; a z voxel is then 2.4x an in-plane one, about DeepLesion's
# ratio of slice interval to pixel size (2-5 mm vs ~0.8 mm)
patch_size = (25, 60, 60)
train_dataloader = dict(dataset=dict(patch_size=patch_size))
val_dataloader = dict(dataset=dict(patch_size=patch_size))
test_dataloader = val_dataloader
