# The axial-only LPC (paper Fig. 5b's 2D ablation) at the CPU size of the synthetic multi-view
# config.
_base_ = './lpc-multiview_resnet18-tiny_1xb16-5e_synthetic.py'

views = ('axial', )  # the axial plane through the proposal centre only
model = dict(type='AxialLPC', num_views=1)
train_dataloader = dict(dataset=dict(views=views))
val_dataloader = dict(dataset=dict(views=views))
test_dataloader = val_dataloader
