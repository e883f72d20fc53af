# The paper's 2D ablation (Fig. 5b, s_c,axial): the multi-view LPC restricted to the axial view.
_base_ = './lpc-multiview_resnet18_1xb32-10e_deeplesion.py'

views = ('axial', )  # the axial plane through the proposal centre only
model = dict(type='AxialLPC', num_views=1)
train_dataloader = dict(dataset=dict(views=views))
val_dataloader = dict(dataset=dict(views=views))
test_dataloader = val_dataloader
