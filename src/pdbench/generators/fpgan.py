"""Fixed-Point GAN (Siddiquee et al., ICCV 2019), the official CelebA architecture (mahfuzmohammad/Fixed-Point-GAN).

StarGAN's generator layout (``model.py``: the same ``main.0`` … ``main.21`` modules and parameter
names) without the final ``Tanh``: the network outputs a residual δ and the edited image is
``tanh(x + δ)``, as every call in the official ``solver.py`` computes it. Trained with an identity
loss (the same-domain translation ``G(x, c_org)`` must return x) so that edits change only what the
target attribute needs; its official ``200000-G.ckpt`` loads with ``strict=True``. Edit conditions and
test-time preprocessing are StarGAN's (the official ``create_labels``; CelebA centre crop 178, resize).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AssetCorruptError, InputError
from . import GENERATORS
from .stargan import StarGAN, StarGANNet


class FPGANNet(StarGANNet):
    """StarGAN's generator network whose last layer (the 7×7 convolution, ``main.21``) is linear: δ."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__(conv_dim, c_dim, repeat_num)
        self.main = nn.Sequential(*list(self.main)[:-1])  # drop the Tanh; indices (and names) stay 0 … 21

    def residual(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """δ = G(x, c), what the official ``Generator.forward`` returns."""
        return super().forward(x, c)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The edited image ``tanh(x + δ)``."""
        return torch.tanh(x + self.residual(x, c))


@GENERATORS.register("fpgan")
class FPGAN(StarGAN):
    """Fixed-Point GAN on StarGAN's five CelebA attributes and its five official test edits."""

    # why pdbench's own weights must not be used for reported numbers (None: a real editor)
    experimental: str | None = ("pdbench's 64 px weights: 329 iterations fine-tuned from StarGAN on a CPU; edits about a third "
                                "of StarGAN's strength, the blond-hair edit not local "
                                "(docs/model-cards/fpgan-celeba-64-pdbench.md); not for reported numbers")

    def __init__(self, resolution: int = 128, conv_dim: int = 64, repeat_num: int = 6):
        super().__init__(resolution, conv_dim, repeat_num)
        self.net = FPGANNet(conv_dim, len(self.attributes), repeat_num)

    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str = "fpgan-celeba-64-pdbench",
                    resolution: int | None = None, device: str | torch.device = "cpu") -> "FPGAN":
        """pdbench's own weights (default) or an official/user checkpoint path (``200000-G.ckpt``; strict)."""
        try:
            model = super().from_assets(checkpoint, asset, resolution, device)
        except AssetCorruptError as e:
            raise AssetCorruptError(str(e).replace("StarGAN", "Fixed-Point GAN")) from None
        if checkpoint is not None:
            model.experimental = None  # the flag describes pdbench's shipped weights, not a user's checkpoint
        return model

    def _check(self, x: torch.Tensor) -> None:
        try:
            super()._check(x)
        except InputError as e:
            raise InputError(str(e).replace("stargan", "fpgan")) from None

    # generate() is StarGAN's: self.net(x, c) is already tanh(x + δ)

    def decode(self, h: torch.Tensor, c: torch.Tensor | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        """tanh(x + δ) from the bottleneck h of :meth:`encode`: the residual is added to the input image,
        so decoding needs x as well."""
        if x is None:
            raise InputError("fpgan: decode needs the input image x (the output is tanh(x + residual))")
        return torch.tanh(x + self.net.main[self.net.n_encoder:](h))
