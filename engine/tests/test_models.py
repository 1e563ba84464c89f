"""The five CIFAR-10 architectures: they build, map 32x32 images to 10 logits, and cost what
the common CIFAR ports cost."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sparsegrid_engine.models import MODELS, build_model
from sparsegrid_engine.protocol import InvalidTask

# Forward G-MAC per 32x32 image of the common CIFAR ports (kuangliu/pytorch-cifar figures).
MAC_TARGETS = {"resnet18": 0.56, "resnet50": 1.30, "densenet121": 0.90}


def forward_gmacs(model, x) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / 1e9  # the counter reports FLOPs = 2 x MACs


@pytest.mark.parametrize("name", MODELS)
def test_model_maps_32x32_images_to_ten_logits(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    gmacs = forward_gmacs(model, x[:1])
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    if name in MAC_TARGETS:
        assert gmacs == pytest.approx(MAC_TARGETS[name], rel=0.15)
    else:  # the light models: tens of M-MAC, far above an ImageNet stem's collapse to 1x1 maps
        assert 0.05 < gmacs < 0.2


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_light_models_keep_a_4x4_map_before_pooling(name):
    model = build_model(name).eval()
    with torch.no_grad():
        features = model.features(torch.randn(1, 3, 32, 32))
    assert features.shape[-2:] == (4, 4)


def test_resnet_stem_is_3x3_stride_1_without_max_pool():
    model = build_model("resnet18")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_model_is_an_invalid_task_listing_the_valid_names():
    with pytest.raises(InvalidTask) as error:
        build_model("resnet19")
    message = str(error.value)
    assert "unknown model 'resnet19'" in message
    for name in MODELS:
        assert name in message
