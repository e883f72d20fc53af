from collections import OrderedDict

import pytest
import torch

from mmlesion.models import DenseNet25D
from mmlesion.models.utils import (
    convert_torchvision_densenet,
    load_torchvision_densenet,
    rename_legacy_densenet_key,
)

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var',
           'num_batches_tracked')


def _bn(prefix, channels, legacy):
    keys = BN_KEYS[:4] if legacy else BN_KEYS
    return [(f'{prefix}.{k}', () if k == 'num_batches_tracked' else
             (channels, )) for k in keys]


def torchvision_densenet121_layout(legacy=False):
    """(key, shape) of torchvision ``densenet121().state_dict()``, written out
    from the architecture (growth 32, bn_size 4, 64 init features, blocks
    6/12/24/16, transitions halve channels). ``legacy``: the key names of
    the old ImageNet checkpoint (``norm.1``, ``conv.2``, no
    ``num_batches_tracked``)."""
    layout = [('features.conv0.weight', (64, 3, 7, 7))]
    layout += _bn('features.norm0', 64, legacy)
    channels = 64
    for block, num_layers in enumerate((6, 12, 24, 16), start=1):
        for layer in range(1, num_layers + 1):
            cin = channels + (layer - 1) * 32
            p = f'features.denseblock{block}.denselayer{layer}'
            sep = '.' if legacy else ''
            layout += _bn(f'{p}.norm{sep}1', cin, legacy)
            layout.append((f'{p}.conv{sep}1.weight', (128, cin, 1, 1)))
            layout += _bn(f'{p}.norm{sep}2', 128, legacy)
            layout.append((f'{p}.conv{sep}2.weight', (32, 128, 3, 3)))
        channels += num_layers * 32
        if block < 4:
            layout += _bn(f'features.transition{block}.norm', channels,
                          legacy)
            layout.append((f'features.transition{block}.conv.weight',
                           (channels // 2, channels, 1, 1)))
            channels //= 2
    assert channels == 1024
    layout += _bn('features.norm5', 1024, legacy)
    layout += [('classifier.weight', (1000, 1024)), ('classifier.bias',
                                                     (1000, ))]
    return layout


def random_state_dict(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for key, shape in layout:
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.randint(1, 1000, (), generator=g)
        else:
            sd[key] = torch.randn(shape, generator=g)
    return sd


def _modern(key):
    """Independent legacy -> modern rename used to check the values."""
    for a in ('norm', 'conv'):
        for d in ('1', '2'):
            key = key.replace(f'.{a}.{d}.', f'.{a}{d}.')
    return key


def _is_dropped(key):
    return (key.startswith('classifier.')
            or key.startswith('features.norm5.')
            or key.startswith('features.denseblock4.')
            or key.startswith('features.transition3.'))


def test_layout_matches_known_densenet121_facts():
    layout = torchvision_densenet121_layout()
    # torchvision densenet121: 7,978,856 parameters
    n_params = sum(
        torch.Size(s).numel() for k, s in layout
        if not k.endswith(('running_mean', 'running_var',
                           'num_batches_tracked')))
    assert n_params == 7978856


@pytest.mark.parametrize('legacy', [False, True])
def test_every_kept_weight_loads(legacy):
    layout = torchvision_densenet121_layout(legacy)
    sd = random_state_dict(layout)
    model = DenseNet25D(num_slice_groups=3)
    fusion_before = model.fusion_convs['2'].weight.clone()
    report = load_torchvision_densenet(model, sd)

    own = model.state_dict()
    kept = [k for k, _ in layout if not _is_dropped(k)]
    dropped = [k for k, _ in layout if _is_dropped(k)]
    assert len(kept) == len(report['loaded'])
    for key in kept:
        ours = _modern(key)[len('features.'):]
        assert torch.equal(own[ours], sd[key]), key
    assert sorted(report['ignored']) == sorted(dropped)
    # every trunk parameter / running stat came from the checkpoint
    trunk = [k for k in own if not k.startswith('fusion_convs.')]
    not_loaded = set(trunk) - set(report['loaded'])
    if legacy:
        assert not_loaded and all(
            k.endswith('num_batches_tracked') for k in not_loaded)
    else:
        assert not_loaded == set()
    assert set(report['not_in_checkpoint']) == (
        not_loaded | {'fusion_convs.2.weight', 'fusion_convs.2.bias'})
    assert torch.equal(model.fusion_convs['2'].weight, fusion_before)


def test_pretrained_torchvision_path_in_init_weights(tmp_path):
    sd = random_state_dict(torchvision_densenet121_layout(legacy=True), 1)
    path = tmp_path / 'densenet121-legacy.pth'
    torch.save(sd, path)
    model = DenseNet25D(num_slice_groups=1, pretrained_torchvision=str(path))
    model.init_weights()
    key = 'features.denseblock3.denselayer24.conv.2.weight'
    assert torch.equal(model.denseblock3.denselayer24.conv2.weight, sd[key])
    assert torch.equal(model.conv0.weight, sd['features.conv0.weight'])
    assert torch.equal(model.transition2.norm.running_var,
                       sd['features.transition2.norm.running_var'])


def test_rename_legacy_key():
    assert rename_legacy_densenet_key(
        'features.denseblock1.denselayer1.norm.1.weight'
    ) == 'features.denseblock1.denselayer1.norm1.weight'
    assert rename_legacy_densenet_key(
        'features.denseblock2.denselayer10.conv.2.weight'
    ) == 'features.denseblock2.denselayer10.conv2.weight'
    assert rename_legacy_densenet_key(
        'features.transition1.norm.weight') == (
            'features.transition1.norm.weight')


def test_bad_checkpoints_raise():
    layout = torchvision_densenet121_layout()
    sd = random_state_dict(layout)
    model = DenseNet25D(num_slice_groups=3)

    missing = OrderedDict(sd)
    del missing['features.denseblock2.denselayer3.conv1.weight']
    with pytest.raises(KeyError, match='denselayer3.conv1.weight'):
        load_torchvision_densenet(model, missing)

    extra = OrderedDict(sd)  # DenseNet-169 has 32 layers in block 3
    extra['features.denseblock3.denselayer25.conv2.weight'] = torch.zeros(
        32, 128, 3, 3)
    with pytest.raises(ValueError, match='denselayer25'):
        load_torchvision_densenet(model, extra)

    wrong_shape = OrderedDict(sd)
    wrong_shape['features.conv0.weight'] = torch.zeros(96, 3, 7, 7)
    with pytest.raises(ValueError, match='shape mismatch'):
        load_torchvision_densenet(model, wrong_shape)

    with pytest.raises(ValueError, match='Not a torchvision DenseNet'):
        convert_torchvision_densenet({'layer1.0.conv1.weight': torch.zeros(1)})
