"""Encoder/decoder backbones shared by the AE and the VAE.

A backbone maps images to a feature vector and a feature vector back to decoder parameters
(logits or means). The bottleneck between them (see autoencoder.py) is what makes a model an
AE or a VAE.
"""
from __future__ import annotations

from torch import Tensor, nn

from .config import ModelConfig, conv_depth


def act(config: ModelConfig) -> nn.Module:
    """The hidden-layer nonlinearity: ELU (every shipped model) or ReLU (pytorch/examples' VAE)."""
    return nn.ReLU() if config.activation == "relu" else nn.ELU()


def conv_widths(config: ModelConfig) -> list[int]:
    """Output channels of each stride-2 conv: channels, 2x, 4x, then 4x again (config.conv_depth of them)."""
    return [config.channels * min(2**i, 4) for i in range(conv_depth(config.image_size))]


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, hidden_dim): stride-2 convs (two at 28x28, more as images grow) then a linear layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = conv_widths(config)
        s = config.image_size // 2 ** len(widths)  # side after the convs: 7 at 28x28, 4 at 32x32 and 64x64
        layers: list[nn.Module] = []
        for c_in, c_out in zip([config.image_channels] + widths[:-1], widths):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act(config)]  # halves H and W
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(widths[-1] * s * s, config.hidden_dim), act(config),
        )
        self.out_dim = config.hidden_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, decoder_input_dim) -> (B, C, H, W) decoder parameters; mirrors ConvEncoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = conv_widths(config)
        s = config.image_size // 2 ** len(widths)
        layers: list[nn.Module] = []
        outs = widths[-2::-1] + [config.image_channels]  # mirror: back down the widths, then to the image
        for i, (c_in, c_out) in enumerate(zip(widths[::-1], outs)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))  # doubles H and W
            if i < len(outs) - 1:
                layers.append(act(config))
        self.net = nn.Sequential(
            nn.Linear(config.decoder_input_dim, config.hidden_dim), act(config),
            nn.Linear(config.hidden_dim, widths[-1] * s * s), act(config),
            nn.Unflatten(1, (widths[-1], s, s)),
            *layers,
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def _hidden_stack(config: ModelConfig) -> list[nn.Module]:
    """(hidden_layers - 1) x [Linear(hidden_dim, hidden_dim), act]: the layers between the first and the last."""
    h = config.hidden_dim
    return [m for _ in range(config.hidden_layers - 1) for m in (nn.Linear(h, h), act(config))]


class MLPEncoder(nn.Module):
    """(B, C, H, W) -> (B, hidden_dim): flatten, `hidden_layers` fully connected layers."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        n = config.image_channels * config.image_size**2
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n, config.hidden_dim), act(config),
            *_hidden_stack(config),
        )
        self.out_dim = config.hidden_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """(B, decoder_input_dim) -> (B, C, H, W) decoder parameters; mirrors MLPEncoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        n = config.image_channels * config.image_size**2
        self.net = nn.Sequential(
            nn.Linear(config.decoder_input_dim, config.hidden_dim), act(config),
            *_hidden_stack(config),
            nn.Linear(config.hidden_dim, n),
            nn.Unflatten(1, (config.image_channels, config.image_size, config.image_size)),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


BACKBONES = {"conv": (ConvEncoder, ConvDecoder), "mlp": (MLPEncoder, MLPDecoder)}
