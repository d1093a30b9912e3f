"""AttentionGAN (Tang et al., TNNLS 2023), the multi-domain v1 on CelebA (Ha0Tang/AttentionGAN: AttentionGAN-v1-multi).

What ID-Guard and PDB attack as "AttentionGAN"/"AGGAN": StarGAN's generator (``model.py``: the same
``main.0`` … ``main.20`` modules and parameter names) whose last 7×7 convolution ``main.21`` has
3 + 1 output channels and no ``Tanh``. Channel 0 is the attention mask A = sigmoid(·), channels 1–3
the (unbounded) content C, and the output blends them with the input:
``y = C · A + x · (1 − A)`` — where A is near 0 the photo is copied through unchanged. ``generate``
returns y clamped to [-1, 1], the image the official test saves (``denorm`` clamps); training and
:meth:`AttentionGAN.attention` use the unclamped network output, as the official solver does. The
official ``200000-G.ckpt`` loads with ``strict=True``. Edit conditions and preprocessing are StarGAN's
(the official ``create_labels``; CelebA centre crop 178, resize), as in PDB's ``aggan_wrapper``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from . import GENERATORS
from .stargan import StarGAN, StarGANNet


class AttentionGANNet(StarGANNet):
    """StarGAN's trunk with a 4-channel output convolution (attention + content)."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__(conv_dim, c_dim, repeat_num)
        layers = list(self.main)[:-2]  # StarGAN's last conv (3 channels) and Tanh
        layers.append(nn.Conv2d(conv_dim, 3 + 1, 7, 1, 3, bias=False))
        self.main = nn.Sequential(*layers)

    def parts(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(result, attention mask repeated to 3 channels, content), as the official ``forward`` returns."""
        return blend(x, super().forward(x, c))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.parts(x, c)[0]


def blend(x: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official output head: A = sigmoid(out[:, :1]), C = out[:, 1:], y = C·A + x·(1 − A)."""
    a = torch.sigmoid(out[:, :1]).expand(-1, 3, -1, -1)
    content = out[:, 1:]
    return content * a + x * (1 - a), a, content


@GENERATORS.register("attentiongan")
class AttentionGAN(StarGAN):
    """AttentionGAN v1 (multi-domain) on StarGAN's five CelebA attributes and its five official test edits."""

    # why pdbench's own weights must not be used for reported numbers (a checkpoint path clears it)
    experimental: str | None = ("pdbench's 64 px weights: 2,600 iterations (its full schedule) fine-tuned from StarGAN on a CPU; the "
                                "attention mask settled on the face for every edit, so hair-colour edits act more in the "
                                "face than in the hair, edits a fifth to a half of StarGAN's strength "
                                "(docs/model-cards/attentiongan-celeba-64-pdbench.md); not for reported numbers")

    net_cls = AttentionGANNet
    title = "AttentionGAN"
    default_asset = "attentiongan-celeba-64-pdbench"

    def generate(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The edited image, clamped to [-1, 1] (the content channels are unbounded)."""
        return super().generate(x, c).clamp(-1, 1)

    def attention(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(result, attention mask, content) for inspection (the official test saves all three)."""
        self._check(x)
        return self.net.parts(x, c)

    def decode(self, h: torch.Tensor, c: torch.Tensor | None = None, x: torch.Tensor | None = None) -> torch.Tensor:
        """The output from the bottleneck h of :meth:`encode`; the attention blends in the input image, so
        decoding needs x as well."""
        if x is None:
            raise InputError("attentiongan: decode needs the input image x (the output blends it in by the attention mask)")
        return blend(x, self.net.main[self.net.n_encoder:](h))[0].clamp(-1, 1)
