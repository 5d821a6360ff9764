"""lenet keeps its convolution weights channels-last: same function, same checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch

from transferkit.models.zoo import lenet


def _nchw_copy(model: torch.nn.Module) -> torch.nn.Module:
    ref = copy.deepcopy(model)
    for mod in ref.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.weight.data = mod.weight.data.clone(memory_format=torch.contiguous_format)
    return ref


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 16, 16), (3, 32, 32)])
def test_lenet_channels_last_is_the_same_function(shape):
    torch.manual_seed(0)
    model = lenet(shape, 10, features=64)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    ref = _nchw_copy(model)
    c2 = [m for m in ref.modules() if isinstance(m, torch.nn.Conv2d)][1]
    assert not c2.weight.is_contiguous(memory_format=torch.channels_last)  # the reference really is NCHW
    model.eval()
    ref.eval()
    x = torch.rand(8, *shape)
    logits, feats = model(x)
    ref_logits, ref_feats = ref(x)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-5)
    (logits.square().sum() + feats.sum()).backward()
    (ref_logits.square().sum() + ref_feats.sum()).backward()
    for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_lenet_checkpoints_load_across_layouts():
    torch.manual_seed(1)
    model = lenet((1, 28, 28), 10)
    plain = _nchw_copy(model)
    fresh = lenet((1, 28, 28), 10)
    fresh.load_state_dict(plain.state_dict())  # an NCHW checkpoint into the channels-last model
    conv = fresh.backbone[0][3]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
