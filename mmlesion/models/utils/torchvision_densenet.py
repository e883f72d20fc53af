"""Map torchvision DenseNet state dicts onto :class:`DenseNet25D`.

torchvision cannot be imported in this project, so the key layout of its
``densenet121`` (``features.conv0.weight``, ``features.norm0.*``,
``features.denseblock1.denselayer1.norm1.*``, ``features.transition1.*``,
``features.norm5.*``, ``classifier.*``) is handled here as plain strings.

:class:`DenseNet25D` names its modules like torchvision's ``features``
children (``conv0``, ``norm0``, ``denseblockK.denselayerJ.{norm1,conv1,norm2,
conv2}``, ``transitionK.{norm,conv}``), so the mapping is: strip
``features.``, rename legacy keys, drop the parts the truncated trunk does not
have (dense blocks after the last kept one, the transition after the last kept
block, ``norm5``, ``classifier``).

Legacy keys: the ImageNet checkpoints torchvision still downloads were saved
by an old torchvision whose dense layers were named ``norm.1``, ``conv.2`` ...;
torchvision renames them on load with a regex, and so do we.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple, Union

import torch
from mmengine.logging import print_log

# ``...denselayer3.norm.1.weight`` -> ``...denselayer3.norm1.weight``
_LEGACY_KEY = re.compile(r'^(.*denselayer\d+\.(?:norm|relu|conv))\.'
                         r'((?:[12])\.(?:weight|bias|running_mean|running_var'
                         r'|num_batches_tracked))$')
_BLOCK_KEY = re.compile(r'^denseblock(\d+)\.')
_TRANSITION_KEY = re.compile(r'^transition(\d+)\.')
_STEM_KEY = re.compile(r'^(?:conv0|norm0)\.')


def rename_legacy_densenet_key(key: str) -> str:
    """Rename an old-torchvision ``norm.1``-style dense-layer key.

    Args:
        key (str): A state-dict key, e.g.
            ``features.denseblock1.denselayer1.norm.1.weight``.

    Returns:
        str: The modern key (``...denselayer1.norm1.weight``); other keys are
        returned unchanged.
    """
    match = _LEGACY_KEY.match(key)
    if match is None:
        return key
    return match.group(1) + match.group(2)


def convert_torchvision_densenet(
        state_dict: Mapping[str, torch.Tensor],
        num_dense_blocks: int = 3
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Convert a torchvision DenseNet state dict to DenseNet25D keys.

    Args:
        state_dict (Mapping[str, Tensor]): torchvision ``DenseNet`` state dict
            (``features.*`` and ``classifier.*`` keys; a ``module.`` prefix
            from DataParallel is accepted).
        num_dense_blocks (int): Dense blocks kept by the truncated trunk
            (3 for DenseNet25D: blocks 1-3 and transitions 1-2).

    Returns:
        tuple: ``(converted, ignored)``: ``converted`` maps DenseNet25D keys
        (e.g. ``denseblock1.denselayer1.norm1.weight``) to tensors;
        ``ignored`` lists the original keys of the dropped parts
        (later dense blocks and transitions, ``norm5``, ``classifier``).

    Raises:
        ValueError: A key is neither a torchvision DenseNet key nor one of
            the dropped parts (not a torchvision DenseNet state dict).
    """
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    ignored: List[str] = []
    unknown: List[str] = []
    for orig_key, value in state_dict.items():
        key = orig_key[len('module.'):] if orig_key.startswith(
            'module.') else orig_key
        if key.startswith('classifier.'):
            ignored.append(orig_key)
            continue
        if not key.startswith('features.'):
            unknown.append(orig_key)
            continue
        key = rename_legacy_densenet_key(key[len('features.'):])
        if key.startswith('norm5.'):
            ignored.append(orig_key)
            continue
        block = _BLOCK_KEY.match(key)
        transition = _TRANSITION_KEY.match(key)
        if block is not None:
            if int(block.group(1)) > num_dense_blocks:
                ignored.append(orig_key)
                continue
        elif transition is not None:
            # transition K follows dense block K; the last kept block has none
            if int(transition.group(1)) >= num_dense_blocks:
                ignored.append(orig_key)
                continue
        elif _STEM_KEY.match(key) is None:
            unknown.append(orig_key)
            continue
        converted[key] = value
    if unknown:
        raise ValueError(
            'Not a torchvision DenseNet state dict: expected keys '
            "'features.conv0.*', 'features.norm0.*', 'features.denseblockK.*',"
            " 'features.transitionK.*', 'features.norm5.*', 'classifier.*', "
            f'got {len(unknown)} other key(s), e.g. {unknown[:5]}')
    return converted, ignored


def load_torchvision_densenet(
        backbone: torch.nn.Module,
        checkpoint: Union[str, Mapping[str, torch.Tensor]],
        num_dense_blocks: int = 3,
        logger: str = 'current') -> Dict[str, List[str]]:
    """Load torchvision DenseNet weights into a DenseNet25D trunk.

    Every parameter and BN running statistic of the kept trunk (stem, dense
    blocks ``1..num_dense_blocks``, transitions before the last kept block)
    must be present with the same shape; the fusion convs (new layers) are
    left as initialised. ``num_batches_tracked`` buffers may be absent
    (legacy checkpoints predate them) and then keep their current value.

    Args:
        backbone (nn.Module): A DenseNet25D (module names as in torchvision's
            ``features``; new layers under ``fusion_convs``).
        checkpoint (str | Mapping[str, Tensor]): Path of a torchvision
            ``densenet121`` ``.pth`` file (loaded with
            ``torch.load(weights_only=True)``; a ``{'state_dict': ...}``
            wrapper is accepted) or the state dict itself.
        num_dense_blocks (int): Dense blocks the trunk keeps.
        logger (str): mmengine logger name for the report.

    Returns:
        dict: ``loaded`` (DenseNet25D keys written), ``ignored`` (checkpoint
        keys of dropped parts), ``not_in_checkpoint`` (our keys the
        checkpoint lacks: ``num_batches_tracked`` buffers and the fusion
        convs).

    Raises:
        KeyError: A kept weight is missing from the checkpoint.
        ValueError: The checkpoint has keys for the kept part that the trunk
            does not have, or a shape differs (another DenseNet variant).
    """
    source = checkpoint if isinstance(checkpoint, str) else '<state dict>'
    if isinstance(checkpoint, str):
        loaded = torch.load(checkpoint, map_location='cpu', weights_only=True)
    else:
        loaded = checkpoint
    if not isinstance(loaded, Mapping):
        raise ValueError(f'{source}: expected a state dict (a mapping of '
                         f'key -> tensor), got {type(loaded).__name__}')
    if 'state_dict' in loaded and isinstance(loaded['state_dict'], Mapping):
        loaded = loaded['state_dict']
    converted, ignored = convert_torchvision_densenet(loaded, num_dense_blocks)

    own = backbone.state_dict()
    trunk_keys = [k for k in own if not k.startswith('fusion_convs.')]
    missing = [
        k for k in trunk_keys
        if k not in converted and not k.endswith('num_batches_tracked')
    ]
    if missing:
        raise KeyError(f'{source}: {len(missing)} weight(s) of the kept '
                       f'DenseNet trunk are missing from the checkpoint, '
                       f'e.g. {missing[:5]}')
    unexpected = [k for k in converted if k not in own]
    if unexpected:
        raise ValueError(
            f'{source}: {len(unexpected)} checkpoint key(s) for the kept '
            f'blocks do not exist in the trunk (a different DenseNet '
            f'variant?), e.g. {unexpected[:5]}')
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape))
                  for k, v in converted.items() if v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f'{source}: shape mismatch (key, checkpoint, '
                         f'model) for {len(mismatched)} key(s), e.g. '
                         f'{mismatched[:5]}')

    backbone.load_state_dict(converted, strict=False)
    not_in_checkpoint = [k for k in own if k not in converted]
    ignored_parts = sorted({_part_name(k) for k in ignored})
    print_log(
        f'Loaded {len(converted)} tensors of torchvision DenseNet from '
        f'{source}; ignored {len(ignored)} keys of {ignored_parts}; '
        f'{len(not_in_checkpoint)} keys kept their initial values '
        f'(fusion convs / num_batches_tracked).',
        logger=logger)
    return dict(
        loaded=list(converted),
        ignored=ignored,
        not_in_checkpoint=not_in_checkpoint)


def _part_name(key: str) -> str:
    """``features.denseblock4.denselayer1.conv1.weight`` -> ``denseblock4``."""
    parts = key.split('.')
    if parts[0] == 'module':
        parts = parts[1:]
    return parts[1] if parts[0] == 'features' else parts[0]
