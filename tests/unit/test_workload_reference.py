"""The workloads against the MLPerf reference implementations.

Standard sizes are pinned on the meta device (parameters exactly, FLOPs per
training sample within 1 %); where the reference code is small, a
transcription of it is built here, the weights copied across, and the outputs
compared. The FLOP counter is checked on grouped and depthwise convolutions
against the analytic count.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from scipy import signal  # type: ignore[import-untyped,unused-ignore]
from torch import nn

from pytest_hetero.workloads import cosmoflow, deepcam, resnet50, unet3d
from pytest_hetero.workloads.card import card, nominal_shape
from pytest_hetero.workloads.common import ConfigValue
from pytest_hetero.workloads.deeplab import DeepLabV3Plus
from pytest_hetero.workloads.flops import count_train_flops
from pytest_hetero.workloads.harness import WorkloadSpec

# workload -> (parameters, GFLOP per training sample) at the standard size, from the references
STANDARD: dict[str, tuple[Any, int, float]] = {
    "cosmoflow": (cosmoflow, 8_907_556, 192.1),
    "deepcam": (deepcam, 56_454_720, 1_964.0),
    "unet3d": (unet3d, 31_190_243, 2_860.0),
    "resnet50": (resnet50, 25_557_032, 24.3),
}


def _standard(module: Any) -> dict[str, ConfigValue]:
    return {**module.DEFAULTS, **module.PRESETS["standard"], "preset": "standard"}


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_standard_size_parameters_and_flops_per_sample(name: str) -> None:
    module, parameters, gflops = STANDARD[name]
    spec: WorkloadSpec = module.SPEC

    described = card(spec, _standard(module))

    assert described["parameters"] == parameters
    assert described["flops_per_sample"] == pytest.approx(gflops * 1e9, rel=0.01)


# --------------------------------------------------------------------------
# The FLOP counter on grouped convolutions
# --------------------------------------------------------------------------


def _train_flops(model: Callable[[], nn.Module], shape: tuple[int, ...]) -> float:
    flops = count_train_flops(model, lambda: (torch.empty(shape), torch.empty(0)), lambda out, _t: out.sum())
    assert flops is not None
    return flops


def test_a_depthwise_layer_counts_forward_and_weight_gradient_once_each() -> None:
    batch, channels, height, width = 2, 728, 12, 18
    forward = 2 * batch * channels * height * width * 3 * 3  # one 3x3 tap per channel and pixel

    flops = _train_flops(lambda: nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                         (batch, channels, height, width))  # fmt: skip

    assert flops == forward * 2  # forward + weight gradient (the input needs none)


def test_stacked_depthwise_layers_add_the_input_gradient_of_the_second() -> None:
    batch, channels, size = 2, 64, 8
    forward = 2 * batch * channels * size * size * 3 * 3

    def model() -> nn.Module:
        return nn.Sequential(*(nn.Conv2d(channels, channels, 3, padding=1, groups=channels) for _ in range(2)))

    # two forwards, two weight gradients, one input gradient (the first layer's input is data)
    assert _train_flops(model, (batch, channels, size, size)) == forward * 5


def test_a_grouped_transposed_convolution_counts_three_times_its_forward() -> None:
    batch, groups, size = 2, 4, 6
    forward = 2 * batch * size * size * 3 * 3 * 16 * (32 // groups)  # input pixels x taps x C_in x C_out/g

    def model() -> nn.Module:
        return nn.Sequential(nn.Conv2d(8, 16, 1), nn.ConvTranspose2d(16, 32, 3, stride=2, groups=groups))

    pointwise = 2 * batch * size * size * 8 * 16
    assert _train_flops(model, (batch, 8, size, size)) == forward * 3 + pointwise * 2


# --------------------------------------------------------------------------
# CosmoFlow: the reference Keras model (cosmoflow/models/cosmoflow.py, configs/cosmo.yaml), transcribed
# --------------------------------------------------------------------------


def reference_cosmoflow(volume: int) -> nn.Sequential:
    """conv_size 32, kernel_size 3, n_conv_layers 5, fc 128/64, LeakyReLU (Keras alpha 0.3), dropout 0.5."""
    layers: list[nn.Module] = []
    channels = 4
    for index in range(5):  # Conv3D(conv_size * 2**i, kernel 3, padding same), LeakyReLU, MaxPool3D(2)
        layers += [nn.Conv3d(channels, 32 * 2**index, 3, padding=1), nn.LeakyReLU(0.3), nn.MaxPool3d(2)]
        channels = 32 * 2**index
    layers += [nn.Flatten(), nn.Linear(channels * (volume // 32) ** 3, 128), nn.LeakyReLU(0.3), nn.Dropout(0.5)]
    layers += [nn.Linear(128, 64), nn.LeakyReLU(0.3), nn.Dropout(0.5), nn.Linear(64, 4), nn.Tanh()]
    return nn.Sequential(*layers)  # then scale_1p2: x * 1.2


def _copy_parameters(source: nn.Module, target: nn.Module) -> None:
    pairs = list(zip(source.state_dict().values(), target.state_dict().values(), strict=True))
    assert all(a.shape == b.shape for a, b in pairs)
    target.load_state_dict(dict(zip(target.state_dict(), (a for a, _ in pairs), strict=True)))


def test_cosmoflow_equals_the_reference_model_with_its_weights() -> None:
    torch.manual_seed(0)
    ours, reference = cosmoflow.CosmoFlow(volume_size=64).eval(), reference_cosmoflow(64).eval()
    _copy_parameters(ours, reference)
    volumes = torch.rand(2, 4, 64, 64, 64) * 3

    with torch.no_grad():
        assert torch.equal(ours(volumes), reference(volumes) * 1.2)


# --------------------------------------------------------------------------
# DeepCAM: the reference decoder (deeplab_xception.py DeconvUpsampler) and forward, transcribed
# --------------------------------------------------------------------------


def _deconv(out_channels: int = 256) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(256, out_channels, 3, stride=2, padding=1, output_padding=(1, 1), bias=False)


class ReferenceDeconvUpsampler(nn.Module):
    def __init__(self, n_output: int) -> None:
        super().__init__()
        self.deconv1 = nn.Sequential(
            _deconv(), nn.BatchNorm2d(256), nn.ReLU(), _deconv(), nn.BatchNorm2d(256), nn.ReLU()
        )
        self.conv1 = nn.Sequential(
            nn.Conv2d(304, 256, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=1, stride=1),
        )
        self.deconv2 = nn.Sequential(_deconv(), nn.BatchNorm2d(256), nn.ReLU())
        self.last_deconv = nn.Sequential(_deconv(n_output))  # no bias or BN on the last deconv

    def forward(self, x: torch.Tensor, low_level_features: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.cat((self.deconv1(x), low_level_features), dim=1))
        result: torch.Tensor = self.last_deconv(self.deconv2(x))
        return result


def _randomise_batch_norms(model: nn.Module) -> None:
    """Running statistics and affine terms away from the identity, so a missing ReLU shows."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)


def _reference_forward(
    model: DeepLabV3Plus, decoder: nn.Module, x: torch.Tensor, inplace_relu: bool = True
) -> torch.Tensor:
    """DeepLabv3_plus.forward with Xception.forward inlined: ``low_level_feat = x; x = self.relu(x)``."""
    encoder = model.encoder
    x = encoder.block1(encoder.stem(x))
    low_level_feat = x
    x = torch.relu_(x) if inplace_relu else torch.relu(x)  # nn.ReLU(inplace=True) rewrites low_level_feat too
    x = model.bottleneck(encoder.exit(encoder.middle(encoder.entry(x))))
    result: torch.Tensor = decoder(x, model.reduce(low_level_feat))
    return result


@pytest.fixture(scope="module")
def deeplab_pair() -> tuple[DeepLabV3Plus, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = DeepLabV3Plus(deepcam.CHANNELS, deepcam.CLASSES)
    with torch.no_grad():
        _randomise_batch_norms(model)
    decoder = ReferenceDeconvUpsampler(3)
    _copy_parameters(model.upsample, decoder)
    return model.eval(), decoder.eval(), torch.rand(1, 16, 64, 96)


def test_deepcam_decoder_block_equals_the_reference(
    deeplab_pair: tuple[DeepLabV3Plus, nn.Module, torch.Tensor],
) -> None:
    model, decoder, _ = deeplab_pair
    x, low = torch.randn(1, 256, 4, 6), torch.randn(1, 48, 16, 24)

    with torch.no_grad():
        assert torch.equal(model.upsample(x, low), decoder(x, low))


def test_deepcam_equals_the_reference_forward_with_post_relu_low_level_features(
    deeplab_pair: tuple[DeepLabV3Plus, nn.Module, torch.Tensor],
) -> None:
    model, decoder, images = deeplab_pair

    with torch.no_grad():
        ours = model(images)
        reference = _reference_forward(model, decoder, images)
        pre_relu = _reference_forward(model, decoder, images, inplace_relu=False)

    assert torch.allclose(ours, reference, atol=1e-5)
    assert not torch.allclose(ours, pre_relu, atol=1e-3)  # the decoder really sees the difference


def test_deepcam_loss_is_the_plain_mean_of_weighted_terms() -> None:
    """utils/losses.py CELoss: CrossEntropyLoss(weight, reduction='none'), then torch.mean."""
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 4, 6), torch.randint(0, 3, (2, 4, 6))
    weight = torch.tensor(deepcam.CLASS_WEIGHTS)
    reference = torch.mean(nn.CrossEntropyLoss(weight=weight, reduction="none")(logits, labels))

    assert torch.allclose(deepcam.SPEC.loss_fn(deepcam.DEFAULTS)(logits, labels), reference)


# --------------------------------------------------------------------------
# 3D U-Net: the reference sliding-window inference (runtime/inference.py), transcribed
# --------------------------------------------------------------------------


def _reference_gaussian(n: int, std: float) -> torch.Tensor:
    gaussian_1d = torch.from_numpy(signal.windows.gaussian(n, std))  # the reference's signal.gaussian
    gaussian_3d = torch.outer(torch.outer(gaussian_1d, gaussian_1d).flatten(), gaussian_1d).reshape(n, n, n)
    gaussian_3d = gaussian_3d ** (1 / 3)  # np.cbrt
    return gaussian_3d / gaussian_3d.max()


def _reference_sliding_window(
    inputs: torch.Tensor, roi: int, model: Callable[[torch.Tensor], torch.Tensor], overlap: float = 0.5
) -> torch.Tensor:
    image_shape, strides = list(inputs.shape[2:]), [int(roi * (1 - overlap))] * 3
    bounds = [image_shape[i] % strides[i] for i in range(3)]
    assert [b if b < strides[i] // 2 else 0 for i, b in enumerate(bounds)] == [0, 0, 0]  # no crop: see the docs
    bounds = [(strides[i] - image_shape[i] % strides[i]) % strides[i] for i in range(3)]
    bounds = [b if image_shape[i] + b >= roi else b + strides[i] for i, b in enumerate(bounds)]
    paddings = [bounds[2] // 2, bounds[2] - bounds[2] // 2, bounds[1] // 2, bounds[1] - bounds[1] // 2]
    paddings += [bounds[0] // 2, bounds[0] - bounds[0] // 2, 0, 0, 0, 0]
    inputs = nn.functional.pad(inputs, paddings, mode="constant", value=-2.2)
    padded_shape = inputs.shape[2:]
    size = [(padded_shape[i] - roi) // strides[i] + 1 for i in range(3)]
    result = torch.zeros(size=(1, 3, *padded_shape), dtype=inputs.dtype)
    norm_map = torch.zeros_like(result)
    norm_patch = _reference_gaussian(roi, 0.125 * roi).type(norm_map.dtype)
    for i, j, k in itertools.product(*(range(0, strides[d] * size[d], strides[d]) for d in range(3))):
        window = (Ellipsis, slice(i, roi + i), slice(j, roi + j), slice(k, roi + k))
        result[window] += model(inputs[window]) * norm_patch
        norm_map[window] += norm_patch
    result /= norm_map
    crop: tuple[Any, ...] = (
        Ellipsis,
        *(slice(paddings[4 - 2 * d], image_shape[d] + paddings[4 - 2 * d]) for d in range(3)),
    )
    return result[crop]


def test_unet3d_sliding_window_equals_the_reference() -> None:
    torch.manual_seed(0)
    model = nn.Conv3d(1, 3, 3, padding=1)  # any patch -> 3-class logits; position-dependent through padding
    config = {**unet3d.DEFAULTS, "patch_size": 32, "overlap": 0.5}
    image = torch.randn(1, 1, 44, 48, 72)  # padded by 4, 0 and 8: remainders of half a stride or more

    with torch.no_grad():
        ours = unet3d.sliding_window(config, model, image)
        reference = _reference_sliding_window(image, 32, model)

    assert ours.shape == (1, 3, 44, 48, 72)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(unet3d.gaussian_window(32, torch.device("cpu")), _reference_gaussian(32, 4.0).float())


def test_unet3d_sgd_has_nesterov_momentum() -> None:
    spec = unet3d.optimizer(unet3d.DEFAULTS, nominal_shape(unet3d.DEFAULTS))
    assert spec.name == "sgd" and spec.options["nesterov"] is True and spec.options["momentum"] == 0.9


# --------------------------------------------------------------------------
# 3D U-Net: the reference model (image_segmentation/pytorch/model/{layers,unet3d}.py), transcribed
# --------------------------------------------------------------------------


def _conv_block(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Module:
    """conv_block_factory with normalization "instancenorm", activation "relu" (the run's flags)."""
    conv = nn.Conv3d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding, bias=False)
    return nn.Sequential(conv, nn.InstanceNorm3d(out_channels, affine=True), nn.ReLU())


class ReferenceUpsampleBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.upsample_conv = nn.Sequential(nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2, bias=True))
        self.conv1 = _conv_block(2 * out_channels, out_channels)
        self.conv2 = _conv_block(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.conv2(self.conv1(torch.cat((self.upsample_conv(x), skip), dim=1)))
        return result


class ReferenceUnet3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        filters = [32, 64, 128, 256, 320]
        self.input_block = nn.Sequential(_conv_block(1, 32), _conv_block(32, 32))  # InputBlock: conv1, conv2
        self.downsample = nn.ModuleList(
            nn.Sequential(_conv_block(i, o, stride=2), _conv_block(o, o)) for i, o in itertools.pairwise(filters)
        )
        self.bottleneck = nn.Sequential(_conv_block(320, 320, stride=2), _conv_block(320, 320))
        upsample = [ReferenceUpsampleBlock(320, 320)]
        upsample += [
            ReferenceUpsampleBlock(i, o) for i, o in zip(reversed(filters[1:]), reversed(filters[:-1]), strict=True)
        ]
        self.upsample = nn.ModuleList(upsample)
        self.output = nn.Sequential(nn.Conv3d(32, 3, kernel_size=1, padding=0, bias=True))  # OutputLayer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_block(x)
        outputs = [x]
        for downsample in self.downsample:
            x = downsample(x)
            outputs.append(x)
        x = self.bottleneck(x)
        for upsample, skip in zip(self.upsample, reversed(outputs), strict=True):
            x = upsample(x, skip)
        result: torch.Tensor = self.output(x)
        return result


def test_unet3d_equals_the_reference_model_with_its_weights() -> None:
    torch.manual_seed(0)
    ours, reference = unet3d.UNet3D().eval(), ReferenceUnet3D().eval()
    for parameter in ours.parameters():  # instance norms away from the identity too
        nn.init.uniform_(parameter, -0.1, 0.1)
    _copy_parameters(ours, reference)
    image = torch.randn(1, 1, 64, 32, 32)  # five stride-2 stages leave 2 x 1 x 1 voxels

    with torch.no_grad():
        assert torch.equal(ours(image), reference(image))
