"""3D-R2N2 with a 3D convolutional LSTM (seed 001): every view is encoded to a 1024-vector by a 2D
CNN (six convolutions with leaky ReLU, slope 0.1, each followed by 2x2 pooling, and a fully
connected layer); a 4 x 4 x 4 grid of LSTM units without an output gate reads the vectors one view
after another, each unit coupled to its neighbours by a 3 x 3 x 3 convolution of the hidden state
(``neighbourhood`` 1: each unit alone, the seed's comparison); a 3D up-convolution decoder turns
the final hidden grid into a 32^3 grid of two-way logits (free, occupied).

The units' update, per view ``t`` with encoding ``x``, hidden ``h`` and cell ``c`` grids::

    f = sigmoid(W_f x + U_f * h + b_f)      i = sigmoid(W_i x + U_i * h + b_i)
    c = f . c + i . tanh(W_c x + U_c * h + b_c)      h = tanh(c)

``W`` are fully connected (1024 -> every unit), ``*`` the 3D convolution over the unit grid.
Views may come in any order and number (the state starts at zero).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

LEAKY_SLOPE = 0.1


@dataclass
class R2N2Config:
    """Architecture of ``ConvLSTMR2N2`` (what a checkpoint needs to rebuild it).

    Attributes:
        image_size: square input side (127 in the seed).
        encoder_channels: the six convolutions' widths (the seed's 96-256; ours narrower, so
            that a batch of 16 objects trains in about 1.2 s on 2 CPU cores: 7.9 M
            parameters against 29 M at the seed's widths, 4.3 s a step).
        feature_size: the view encoding (the seed's 1024; 512 here, the same reason).
        grid: LSTM units per side (4).
        hidden: channels of each unit's state (the seed's 128; 64 here).
        neighbourhood: 3 (units coupled to neighbours) or 1 (each alone).
        decoder_channels: widths after each 2x up-sampling (4 -> 8 -> 16 -> 32).
        output_size: occupancy grid side (32).
    """

    image_size: int = 127
    encoder_channels: tuple[int, ...] = (16, 32, 64, 128, 128, 256)
    feature_size: int = 512
    grid: int = 4
    hidden: int = 64
    neighbourhood: int = 3
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    output_size: int = 32

    def __post_init__(self) -> None:
        self.encoder_channels = tuple(int(c) for c in self.encoder_channels)
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        if self.neighbourhood not in (1, 3):
            raise ValueError(f"neighbourhood: expected 1 or 3, got {self.neighbourhood}")
        if self.grid * 2 ** len(self.decoder_channels) != self.output_size:
            raise ValueError(
                f"grid {self.grid} doubled {len(self.decoder_channels)} times is not "
                f"output_size {self.output_size}"
            )

    def to_dict(self) -> dict:
        values = asdict(self)
        values["encoder_channels"] = list(self.encoder_channels)
        values["decoder_channels"] = list(self.decoder_channels)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> R2N2Config:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ViewEncoder(nn.Module):
    """(B, 3, S, S) images in [0, 1] -> (B, feature_size)."""

    def __init__(self, config: R2N2Config):
        super().__init__()
        layers, previous, side = [], 3, config.image_size
        for index, width in enumerate(config.encoder_channels):
            kernel = 7 if index == 0 else 3
            layers += [
                nn.Conv2d(previous, width, kernel, padding=kernel // 2),
                nn.LeakyReLU(LEAKY_SLOPE),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            previous, side = width, -(-side // 2)
        self.convolutions = nn.Sequential(*layers)
        self.fc = nn.Linear(previous * side * side, config.feature_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.convolutions(images * 2.0 - 1.0)
        return F.leaky_relu(self.fc(x.flatten(1)), LEAKY_SLOPE)


class ConvLSTMGrid(nn.Module):
    """The 4 x 4 x 4 LSTM units without output gate (module docstring): ``step(x, h, c)``."""

    def __init__(self, config: R2N2Config):
        super().__init__()
        self.grid, self.hidden = config.grid, config.hidden
        units = config.grid**3
        self.input_gates = nn.Linear(config.feature_size, 3 * config.hidden * units)
        k = config.neighbourhood
        self.hidden_gates = nn.Conv3d(config.hidden, 3 * config.hidden, k, padding=k // 2)

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero hidden and cell grids (B, hidden, G, G, G)."""
        shape = (batch, self.hidden, self.grid, self.grid, self.grid)
        zeros = torch.zeros(shape, device=device)
        return zeros, zeros.clone()

    def step(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One view: x (B, feature_size), h and c (B, hidden, G, G, G) -> new h, c."""
        g = self.grid
        gates = self.input_gates(x).view(-1, 3 * self.hidden, g, g, g) + self.hidden_gates(h)
        forget, write, candidate = gates.chunk(3, dim=1)
        c = torch.sigmoid(forget) * c + torch.sigmoid(write) * torch.tanh(candidate)
        return torch.tanh(c), c


class ConvLSTMR2N2(nn.Module):
    """(B, T, 3, S, S) views in any order -> (B, 2, 32, 32, 32) logits (free, occupied)."""

    def __init__(self, config: R2N2Config | None = None):
        super().__init__()
        self.config = config = config or R2N2Config()
        self.encoder = ViewEncoder(config)
        self.lstm = ConvLSTMGrid(config)
        layers, previous = [], config.hidden
        for width in config.decoder_channels:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv3d(previous, width, 3, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            previous = width
        layers.append(nn.Conv3d(previous, 2, 3, padding=1))
        self.decoder = nn.Sequential(*layers)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if views.ndim != 5 or tuple(views.shape[2:]) != (3, size, size) or views.shape[1] < 1:
            raise ValueError(
                f"views: expected (B, T >= 1, 3, {size}, {size}), got {tuple(views.shape)}"
            )
        batch, count = views.shape[:2]
        encoded = self.encoder(views.flatten(0, 1)).view(batch, count, -1)
        h, c = self.lstm.initial_state(batch, views.device)
        for t in range(count):
            h, c = self.lstm.step(encoded[:, t], h, c)
        return self.decoder(h)


def voxel_cross_entropy(
    logits: torch.Tensor, occupancy: torch.Tensor, occupied_weight: float = 1.0
) -> torch.Tensor:
    """Mean two-way cross-entropy of (B, 2, N, N, N) logits against (B, N, N, N) 0/1 targets;
    ``occupied_weight`` weighs the occupied voxels against the empty ones (a weighted mean:
    thin parts, a table's top and legs, are a few per cent of its grid)."""
    if logits.ndim != 5 or logits.shape[1] != 2 or logits.shape[2:] != occupancy.shape[1:]:
        raise ValueError(
            f"logits/occupancy: expected (B, 2, N, N, N) and (B, N, N, N), got "
            f"{tuple(logits.shape)}, {tuple(occupancy.shape)}"
        )
    if occupied_weight <= 0:
        raise ValueError(f"occupied_weight: must be > 0, got {occupied_weight}")
    if occupied_weight == 1.0:
        return F.cross_entropy(logits, occupancy.long())
    weight = torch.tensor([1.0, occupied_weight], dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, occupancy.long(), weight=weight)


def occupancy_iou(logits: torch.Tensor, occupancy: torch.Tensor, threshold: float = 0.4):
    """(B,) IoU of the occupied probability above ``threshold`` (the seed's 0.4) against the
    targets; 1 where both are empty."""
    predicted = torch.softmax(logits, dim=1)[:, 1] > threshold
    target = occupancy > 0.5
    inter = (predicted & target).flatten(1).sum(1).float()
    union = (predicted | target).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
