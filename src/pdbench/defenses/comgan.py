"""DF-RAP's ComG: a U-Net that imitates online-social-network (OSN) JPEG compression, differentiably.

The architecture and parameter names are those of ZOMIN28/DF_RAP ``net/ComGAN.py`` (``ComGenerator``), so
the authors' weights (``checkpoints/ComGAN/ComG_model.pt``, a pickled module; its ``state_dict()``) load
strictly: a 3×3 stem ``conv1`` at full resolution, four max-pool + residual-block stages ``conv2``…``conv5``
(width ×2 each; a block is conv3×3–IN–ReLU–conv3×3–IN plus a 1×1 shortcut, no biases, InstanceNorm with
affine weights and running statistics), four transposed-conv up-samplings ``upsample54``…``upsample21``
with skip concatenation into ``conv4m``…``conv1m``, and a 3×3 ``conv0`` with tanh. Input and output are
images in [-1, 1]. As in the official code, ``InstanceNorm2d(track_running_stats=True)`` normalises by the
running statistics in eval mode (the mode DF-RAP attacks through).

The official ``isJPEG`` option (a DiffJPEG layer after the network, at a quality drawn per call) is not
part of the network: pdbench's DF-RAP offers differentiable JPEG separately (``dfrap-kornia``).

``QF`` / ``QF_WEIGHTS``: DF-RAP's OSN quality distribution (``data/qf.txt``): the JPEG qualities the
authors observed after OSN transmission and their frequencies.
"""

from __future__ import annotations

import torch
from torch import nn

# ZOMIN28/DF_RAP data/qf.txt: quality factors and their observed frequencies (they sum to 1.0)
QF = (71, 72, 75, 78, 79, 80, 84, 85, 86, 88, 89, 90, 91, 92, 100)
QF_WEIGHTS = (0.0132, 0.0268, 0.0127, 0.0573, 0.0156, 0.2213, 0.0107, 0.2193, 0.0110, 0.0107, 0.0120, 0.0120,
              0.0171, 0.2272, 0.1331)

ASSET = "comgan-celeba-64-pdbench"


def sample_quality(n: int, generator: torch.Generator | None = None) -> list[int]:
    """n JPEG qualities drawn from DF-RAP's OSN distribution (``torch.multinomial`` on its weights, as the
    official ``qf_sample``)."""
    idx = torch.multinomial(torch.tensor(QF_WEIGHTS), n, replacement=True, generator=generator)
    return [QF[i] for i in idx.tolist()]


class ResidualBlock(nn.Module):
    """conv3×3–IN–ReLU–conv3×3–IN plus a 1×1 convolution shortcut (changes the width)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True))
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, bias=False)

    def forward(self, x):
        return self.conv1x1(x) + self.main(x)


def _up(ch_in: int, ch_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(ch_in, ch_out, 4, 2, 1, bias=False), nn.ReLU())


class ComGenerator(nn.Module):
    """DF-RAP's compression generator (official width ``dim=32``)."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.dim = int(dim)
        d = self.dim
        self.conv1 = nn.Sequential(nn.Conv2d(3, d, 3, 1, 1, bias=False))
        self.conv2 = nn.Sequential(ResidualBlock(d, 2 * d))
        self.conv3 = nn.Sequential(ResidualBlock(2 * d, 4 * d))
        self.conv4 = nn.Sequential(ResidualBlock(4 * d, 8 * d))
        self.conv5 = nn.Sequential(ResidualBlock(8 * d, 16 * d))
        self.conv4m = nn.Sequential(ResidualBlock(16 * d, 8 * d))
        self.conv3m = nn.Sequential(ResidualBlock(8 * d, 4 * d))
        self.conv2m = nn.Sequential(ResidualBlock(4 * d, 2 * d))
        self.conv1m = nn.Sequential(ResidualBlock(2 * d, d))
        self.conv0 = nn.Sequential(nn.Conv2d(d, 3, 3, 1, 1), nn.Tanh())
        self.max_pool = nn.MaxPool2d(2, 2)
        self.upsample54 = _up(16 * d, 8 * d)
        self.upsample43 = _up(8 * d, 4 * d)
        self.upsample32 = _up(4 * d, 2 * d)
        self.upsample21 = _up(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ComG(x) for images in [-1, 1]. Sides that are not multiples of 16 (a photo protected at its own
        resolution) are padded by reflection to the next multiple and cropped back; multiples of 16 run
        exactly as the official forward."""
        h, w = x.shape[-2:]
        ph, pw = -h % 16, -w % 16
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            return self._forward(torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode))[..., :h, :w]
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1(x)
        c2 = self.conv2(self.max_pool(c1))
        c3 = self.conv3(self.max_pool(c2))
        c4 = self.conv4(self.max_pool(c3))
        c5 = self.conv5(self.max_pool(c4))
        u4 = self.conv4m(torch.cat((self.upsample54(c5), c4), 1))
        u3 = self.conv3m(torch.cat((self.upsample43(u4), c3), 1))
        u2 = self.conv2m(torch.cat((self.upsample32(u3), c2), 1))
        u1 = self.conv1m(torch.cat((self.upsample21(u2), c1), 1))
        return self.conv0(u1)


def load_comg(checkpoint: str | None = None, device="cpu") -> ComGenerator:
    """The ComG of a checkpoint (a state-dict file: pdbench's export or the authors' ``ComG.state_dict()``),
    else pdbench's shipped one (checksum-verified), loaded strictly, in eval mode, without gradients.

    The width is read from the checkpoint (``conv1.0.weight`` has ``dim`` output channels)."""
    from ..generators.base import checkpoint_state, load_frozen

    state, source, _ = checkpoint_state(checkpoint, ASSET)
    if isinstance(state.get("ComG"), dict):  # {'ComG': state_dict, ...}
        state = state["ComG"]
    w = state.get("conv1.0.weight")
    if w is None or w.dim() != 4:
        from ..errors import AssetCorruptError

        raise AssetCorruptError(f"checkpoint {source} is not a ComG state dict (no conv1.0.weight); pass a ComG "
                                "checkpoint (`pdbench train comgan` + `pdbench export`)")
    return load_frozen(ComGenerator(dim=int(w.shape[0])), state, source).to(device)
