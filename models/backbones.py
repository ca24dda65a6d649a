"""Encoder/decoder backbones shared by the AE and the VAE.

A backbone maps images to a feature vector and a feature vector back to decoder parameters
(logits or means). The bottleneck between them (see autoencoder.py) is what makes a model an
AE or a VAE.
"""
from __future__ import annotations

from torch import Tensor, nn

from .config import ModelConfig


def act(config: ModelConfig) -> nn.Module:
    """The hidden-layer nonlinearity: ELU (every shipped model) or ReLU (pytorch/examples' VAE)."""
    return nn.ReLU() if config.activation == "relu" else nn.ELU()


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, hidden_dim): two stride-2 convs then a linear layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c, s = config.channels, config.image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(config.image_channels, c, 4, stride=2, padding=1), act(config),  # (B, c, H/2, W/2)
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), act(config),  # (B, 2c, H/4, W/4)
            nn.Flatten(),
            nn.Linear(2 * c * s * s, config.hidden_dim), act(config),
        )
        self.out_dim = config.hidden_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, decoder_input_dim) -> (B, C, H, W) decoder parameters; mirrors ConvEncoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c, s = config.channels, config.image_size // 4
        self.net = nn.Sequential(
            nn.Linear(config.decoder_input_dim, config.hidden_dim), act(config),
            nn.Linear(config.hidden_dim, 2 * c * s * s), act(config),
            nn.Unflatten(1, (2 * c, s, s)),  # (B, 2c, H/4, W/4)
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), act(config),  # (B, c, H/2, W/2)
            nn.ConvTranspose2d(c, config.image_channels, 4, stride=2, padding=1),  # (B, C, H, W)
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
