_base_ = './mscn/mscn_densenet121-9slice_1xb8-8e_deeplesion.py'
