"""The study's five architectures, adapted to 32x32 CIFAR-10 images.

Each starts from torchvision's definition (weights=None: nothing is downloaded) with 10 classes,
and changes only what the ImageNet stem gets wrong at 32x32, as the common CIFAR ports do.
Forward MACs per image: resnet18 ~0.56 G, resnet50 ~1.30 G, mobilenet_v2 ~0.09 G,
densenet121 ~0.90 G, efficientnet_b0 ~0.12 G (tests/test_models.py checks the first three).
"""

import torch.nn as nn
import torchvision

from .protocol import InvalidTask

CLASSES = 10


def _cifar_stem(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


def _first_stride2_conv_to_stride1(block: nn.Module) -> None:
    # The stride sits on the depthwise conv; padding is k//2, so stride 1 keeps the size.
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
            return
    raise AssertionError(f"no stride-2 convolution in {type(block).__name__}")


def resnet18() -> nn.Module:
    """torchvision ResNet-18 with the CIFAR stem: the 7x7 stride-2 conv becomes 3x3 stride 1 and
    the 3x3 max-pool is removed, so layer1 sees 32x32 and layer4 4x4 (as in kuangliu's port)."""
    m = torchvision.models.resnet18(weights=None, num_classes=CLASSES)
    m.conv1 = _cifar_stem(3, 64)
    m.maxpool = nn.Identity()
    return m


def resnet50() -> nn.Module:
    """torchvision ResNet-50 (v1.5, stride on the 3x3 conv) with the same CIFAR stem as
    resnet18: 3x3 stride-1 first conv, no max-pool."""
    m = torchvision.models.resnet50(weights=None, num_classes=CLASSES)
    m.conv1 = _cifar_stem(3, 64)
    m.maxpool = nn.Identity()
    return m


def mobilenet_v2() -> nn.Module:
    """torchvision MobileNet-V2 (width 1.0) with the stem conv at stride 1 instead of 2 and the
    first 24-channel block at stride 1 instead of 2, so the feature map goes 32 -> 16 -> 8 -> 4
    instead of collapsing to 1x1 (as in kuangliu's port)."""
    m = torchvision.models.mobilenet_v2(weights=None, num_classes=CLASSES)
    m.features[0][0].stride = (1, 1)
    _first_stride2_conv_to_stride1(m.features[2])
    return m


def densenet121() -> nn.Module:
    """torchvision DenseNet-121 (growth 32) with the 7x7 stride-2 conv0 replaced by a 3x3
    stride-1 conv to 64 channels and pool0 removed; the dense blocks then run at 32, 16, 8, 4."""
    m = torchvision.models.densenet121(weights=None, num_classes=CLASSES)
    m.features.conv0 = _cifar_stem(3, 64)
    m.features.pool0 = nn.Identity()
    return m


def efficientnet_b0() -> nn.Module:
    """torchvision EfficientNet-B0 with the stem conv at stride 1 instead of 2 and the first
    24-channel MBConv at stride 1 instead of 2; the stages then run at 32, 32, 16, 8, 8, 4, 4
    instead of shrinking 32x32 to 1x1. Dropout and stochastic depth stay as torchvision has them."""
    m = torchvision.models.efficientnet_b0(weights=None, num_classes=CLASSES)
    m.features[0][0].stride = (1, 1)
    _first_stride2_conv_to_stride1(m.features[2][0])
    return m


BUILDERS = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "densenet121": densenet121,
    "efficientnet_b0": efficientnet_b0,
}
MODELS = tuple(BUILDERS)


def check_name(name) -> str:
    """The name if it is a known model; InvalidTask listing the valid ones otherwise."""
    if name not in BUILDERS:
        raise InvalidTask(f"unknown model {name!r}; valid models: {', '.join(MODELS)}.")
    return name


def build_model(name: str) -> nn.Module:
    """A freshly initialised model (torch's default init, seeded by the caller)."""
    return BUILDERS[check_name(name)]()
