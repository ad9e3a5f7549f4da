"""Random affine distortions of character images, batched with ``affine_grid``/``grid_sample``.

Small rotations, scalings, shears and shifts mimic how different people draw the same character;
they are drawn from the caller's generator so training stays reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Affine:
    rotate_deg: float = 10.0
    scale: float = 0.1
    shear: float = 0.1
    shift: float = 0.1  # as a fraction of the half-width (grid units are [-1, 1])

    def matrices(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` random 2x3 affine matrices."""
        u = torch.rand(n, 6, generator=gen) * 2 - 1
        theta = u[:, 0] * math.radians(self.rotate_deg)
        sx = 1 + u[:, 1] * self.scale
        sy = 1 + u[:, 2] * self.scale
        sh = u[:, 3] * self.shear
        cos, sin = torch.cos(theta), torch.sin(theta)
        a = torch.stack([cos * sx, -sin * sy + sh * cos * sx, u[:, 4] * self.shift], dim=1)
        b = torch.stack([sin * sx, cos * sy + sh * sin * sx, u[:, 5] * self.shift], dim=1)
        return torch.stack([a, b], dim=1)

    def __call__(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Distort ``float [B, C, H, W]`` images, each with its own transform."""
        mats = self.matrices(images.shape[0], gen).to(images.device, images.dtype)
        grid = F.affine_grid(mats, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
