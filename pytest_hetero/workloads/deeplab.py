"""DeepLabv3+ with the modified aligned Xception encoder, as MLPerf HPC DeepCAM uses it.

Layer for layer the reference ``deeplab_xception.py`` (output stride 16,
batch norm, no pretrained weights), in plain torch. One change that does not
alter the function: the global-pool branch of ASPP is broadcast to the
feature map's size instead of tiled to the hard-coded 48×72, so other image
sizes work too. The low-level features the decoder gets are taken after
the ReLU that follows the first entry block, as the reference's in-place
ReLU makes them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DeepLabV3Plus", "Xception"]

MIDDLE_BLOCKS = 16
ASPP_RATES = (1, 6, 12, 18)


class SeparableConv(nn.Module):
    """Depthwise k×k (padded as "same" for the dilation) then pointwise 1×1."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation  # (3 + 2 (dilation - 1) - 1) // 2 for kernel 3
        self.conv1 = nn.Conv2d(inplanes, inplanes, 3, stride, padding, dilation, groups=inplanes, bias=False)
        self.pointwise = nn.Conv2d(inplanes, planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.pointwise(self.conv1(x))
        return result


class Block(nn.Module):
    """``reps`` separable convs with batch norm and ReLU, a residual, optional stride."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        reps: int,
        stride: int = 1,
        dilation: int = 1,
        end_with_relu: bool = True,
        grow_first: bool = True,
        is_last: bool = False,
    ) -> None:
        super().__init__()
        self.end_with_relu = end_with_relu
        self.skip: nn.Module | None = None
        if planes != inplanes or stride != 1:
            self.skip = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
        self.relu = nn.ReLU(inplace=True)
        widths = [(inplanes, planes)] + [(planes, planes)] * (reps - 1)
        if not grow_first:
            widths = [(inplanes, inplanes)] * (reps - 1) + [(inplanes, planes)]
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(widths):
            layers += [SeparableConv(width_in, width_out, dilation=dilation), nn.BatchNorm2d(width_out)]
            if index < len(widths) - 1:
                layers.append(nn.ReLU(inplace=True))
        if stride != 1:
            layers.append(SeparableConv(planes, planes, stride=2))
        elif is_last:
            layers.append(SeparableConv(planes, planes))
        self.rep = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x: torch.Tensor = self.rep(inputs)
        x = x + (inputs if self.skip is None else self.skip(inputs))
        return self.relu(x) if self.end_with_relu else x


def _conv_bn_relu(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class Xception(nn.Module):
    """Entry, middle (16 blocks) and exit flows; returns features and 1/4 low-level features."""

    def __init__(self, inplanes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            *_conv_bn_relu(nn.Conv2d(inplanes, 32, 3, stride=2, padding=1, bias=False), 32),
            *_conv_bn_relu(nn.Conv2d(32, 64, 3, padding=1, bias=False), 64),
        )
        self.block1 = Block(64, 128, reps=2, stride=2, end_with_relu=False)
        self.relu = nn.ReLU(inplace=False)
        self.entry = nn.Sequential(
            Block(128, 256, reps=2, stride=2),
            Block(256, 728, reps=2, stride=2, is_last=True),
        )
        self.middle = nn.Sequential(*(Block(728, 728, reps=3) for _ in range(MIDDLE_BLOCKS)))
        self.exit = nn.Sequential(
            Block(728, 1024, reps=2, dilation=1, end_with_relu=False, grow_first=False, is_last=True),
            *_conv_bn_relu(SeparableConv(1024, 1536, dilation=2), 1536),
            *_conv_bn_relu(SeparableConv(1536, 1536, dilation=2), 1536),
            *_conv_bn_relu(SeparableConv(1536, 2048, dilation=2), 2048),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the reference keeps block1's output as the low-level features, then applies an
        # in-place ReLU to it: the decoder gets them after the ReLU
        low_level = self.relu(self.block1(self.stem(x)))
        return self.exit(self.middle(self.entry(low_level))), low_level


class Bottleneck(nn.Module):
    """ASPP: four atrous branches and a global-pool branch, fused by a 1×1 conv."""

    def __init__(self, in_channels: int = 2048, out_channels: int = 256) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(_atrous(in_channels, out_channels, rate), out_channels)) for rate in ASPP_RATES
        )
        self.pool_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool_weight = nn.Parameter(torch.ones(out_channels, 1, 1))  # the reference's TrainableAffine
        self.pool_bias = nn.Parameter(torch.zeros(out_channels, 1, 1))
        self.fuse = nn.Sequential(
            *_conv_bn_relu(nn.Conv2d(5 * out_channels, out_channels, 1, bias=False), out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool_conv(torch.mean(x, dim=(2, 3), keepdim=True))
        pooled = torch.relu(self.pool_weight * pooled + self.pool_bias).expand(-1, -1, *x.shape[2:])
        result: torch.Tensor = self.fuse(torch.cat([*(branch(x) for branch in self.branches), pooled], dim=1))
        return result


def _atrous(in_channels: int, out_channels: int, rate: int) -> nn.Conv2d:
    kernel, padding = (1, 0) if rate == 1 else (3, rate)
    return nn.Conv2d(in_channels, out_channels, kernel, padding=padding, dilation=rate, bias=False)


def _deconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False)


class DeconvUpsampler(nn.Module):
    """×4 deconvolution, concat with low-level features, convs, ×2, ×2 to classes."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.deconv1 = nn.Sequential(*_conv_bn_relu(_deconv(256, 256), 256), *_conv_bn_relu(_deconv(256, 256), 256))
        self.conv1 = nn.Sequential(
            *_conv_bn_relu(nn.Conv2d(304, 256, 3, padding=1, bias=False), 256),
            *_conv_bn_relu(nn.Conv2d(256, 256, 3, padding=1, bias=False), 256),
            nn.Conv2d(256, 256, 1),
        )
        self.deconv2 = nn.Sequential(*_conv_bn_relu(_deconv(256, 256), 256))
        self.last_deconv = _deconv(256, classes)  # no bias or batch norm on the last one

    def forward(self, x: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.cat((self.deconv1(x), low_level), dim=1))
        result: torch.Tensor = self.last_deconv(self.deconv2(x))
        return result


class DeepLabV3Plus(nn.Module):
    """The DeepCAM network: ``in_channels`` climate variables in, per-pixel class logits out."""

    def __init__(self, in_channels: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.encoder = Xception(in_channels)
        self.bottleneck = Bottleneck()
        self.reduce = nn.Sequential(nn.Conv2d(128, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU())
        self.upsample = DeconvUpsampler(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, low_level = self.encoder(x)
        result: torch.Tensor = self.upsample(self.bottleneck(features), self.reduce(low_level))
        return result
