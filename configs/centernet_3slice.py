_base_ = './centernet/centernet_densenet121-3slice_1xb8-8e_deeplesion.py'
