"""AttentionGAN v1 (multi-domain)'s CelebA training recipe (Ha0Tang/AttentionGAN: AttentionGAN-v1-multi).

The official ``solver.py`` is StarGAN's, unchanged but for the generator's outputs: WGAN-GP (λ_gp 10)
with the auxiliary attribute classification (λ_cls 1), the L1 cycle reconstruction (λ_rec 10), Adam
lr 1e-4 β (0.5, 0.999), n_critic 5, batch 16, random target labels (the batch's own, permuted), lr
decayed linearly over the second half. All losses see the blended result ``C·A + x·(1 − A)``; the
attention mask gets no loss of its own. So the trainer is StarGAN's with AttentionGAN's network.

``--init`` also accepts a StarGAN generator (e.g. ``stargan-celeba-64-pdbench``, which brings its
critic): its layers are AttentionGAN's trunk, its output convolution becomes the content channels
and the attention channel starts at zero (A = 0.5 everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..generators.attentiongan import AttentionGANNet
from ..generators.stargan import ATTRS, target_conditions
from ..tensors import to_uint8
from . import TRAINERS
from .stargan import StarGANFamilyTrainer, StarGANRecipe

OUT = "main.21.weight"  # the output convolution


@dataclass
class AttentionGANRecipe(StarGANRecipe):
    """The official defaults (``main.py``) are StarGAN's."""


def stargan_output_to_attention(state: dict, prefix: str, *args) -> None:
    """load_state_dict pre-hook: a StarGAN generator's 3-channel output convolution becomes the content
    channels 1–3 of AttentionGAN's, with a zero attention channel 0. Other state dicts pass unchanged."""
    w = state.get(prefix + OUT)
    if w is not None and w.shape[0] == 3:
        state[prefix + OUT] = torch.cat([torch.zeros_like(w[:1]), w], dim=0)


def sample_grid(G: AttentionGANNet, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Rows: input, the five official edits (black, blond, brown hair, gender, age), then their five
    attention masks (white: generated, black: copied from the input), as the official test saves them."""
    with torch.inference_mode():
        parts = [G.parts(x, c) for c in target_conditions(labels).to(x.device)]
    outs = [x] + [p[0] for p in parts] + [p[1] * 2 - 1 for p in parts]
    return np.concatenate(list(to_uint8(torch.cat(outs, dim=3))), axis=0)


@TRAINERS.register("attentiongan")
class AttentionGANTrainer(StarGANFamilyTrainer):
    Recipe = AttentionGANRecipe
    attributes = ATTRS

    net_cls = AttentionGANNet

    def sample_grid(self) -> np.ndarray:
        return sample_grid(self.G, self.fixed_x, self.fixed_c)

    def init_from(self, source: str) -> str:
        """As the loop's, and a StarGAN generator initialises AttentionGAN's (see the module notes)."""
        converted = []

        def hook_fn(state, prefix, *args):
            w = state.get(prefix + OUT)
            converted.append(w is not None and w.shape[0] == 3)
            stargan_output_to_attention(state, prefix, *args)

        hook = self.G._register_load_state_dict_pre_hook(hook_fn)
        try:
            what = super().init_from(source)
        finally:
            hook.remove()
        if any(converted):
            what += "; a StarGAN generator: its output convolution became the content channels, the attention starts at 0"
            self.init = what
            print("StarGAN's output convolution -> content channels; attention channel at zero (A = 0.5)", flush=True)
        return what
