"""AttentionGAN v1 (multi-domain)'s CelebA training recipe (Ha0Tang/AttentionGAN: AttentionGAN-v1-multi).

The official ``solver.py`` is StarGAN's, unchanged but for the generator's outputs: WGAN-GP (λ_gp 10)
with the auxiliary attribute classification (λ_cls 1), the L1 cycle reconstruction (λ_rec 10), Adam
lr 1e-4 β (0.5, 0.999), n_critic 5, batch 16, random target labels (the batch's own, permuted), lr
decayed linearly over the second half. All losses see the blended result ``C·A + x·(1 − A)``; the
attention mask gets no loss of its own. So the trainer is StarGAN's with AttentionGAN's network.

``--init`` also accepts a StarGAN generator (e.g. ``stargan-celeba-64-pdbench``, which brings its
critic): its layers are AttentionGAN's trunk, its output convolution becomes the content channels
and the attention channel starts at zero (A = 0.5 everywhere).

Opt-in, not in the official recipe: ``content_scale`` α (``--set content_scale=0.6``) scales that
converted output convolution's content weights by α, so the content starts as α·s (s: StarGAN's
output *before* its Tanh; the convolution has no bias, so this is exact). The official head has no
Tanh on the content, and s is far from the photo (0.33 L1 on 32 training faces, 0.36 in the hair;
StarGAN's image tanh(s) is 0.16 off): α = 0.6 brings it to 0.19 (0.20 in the hair), the closest of
α in 0.3…1.0. The default 1 is the shipped run's start; it applies only to a StarGAN ``--init``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..generators.attentiongan import AttentionGANNet
from ..generators.stargan import ATTRS, target_conditions
from ..tensors import to_uint8
from . import TRAINERS
from .stargan import StarGANFamilyTrainer, StarGANRecipe

OUT = "main.21.weight"  # the output convolution


@dataclass
class AttentionGANRecipe(StarGANRecipe):
    """The official defaults (``main.py``) are StarGAN's; ``content_scale`` is pdbench's opt-in start (module notes)."""

    content_scale: float = 1.0  # a StarGAN --init's content starts as content_scale × its pre-Tanh output; 1: as shipped


def stargan_output_to_attention(state: dict, prefix: str, *args, content_scale: float = 1.0) -> None:
    """load_state_dict pre-hook: a StarGAN generator's 3-channel output convolution becomes the content
    channels 1–3 of AttentionGAN's (times ``content_scale``), with a zero attention channel 0. Other
    state dicts pass unchanged."""
    w = state.get(prefix + OUT)
    if w is not None and w.shape[0] == 3:
        state[prefix + OUT] = torch.cat([torch.zeros_like(w[:1]), w * content_scale], dim=0)  # × 1 is exact


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
        alpha = self.recipe.content_scale
        if not alpha > 0:
            raise InputError(f"content_scale={alpha}: give a positive factor (1: the shipped start; 0.6: content near the photo)")
        converted = []

        def hook_fn(state, prefix, *args):
            w = state.get(prefix + OUT)
            converted.append(w is not None and w.shape[0] == 3)
            stargan_output_to_attention(state, prefix, *args, content_scale=alpha)

        hook = self.G._register_load_state_dict_pre_hook(hook_fn)
        try:
            what = super().init_from(source)
        finally:
            hook.remove()
        if any(converted):
            scaled = f" scaled by content_scale {alpha:g}" if alpha != 1 else ""
            what += (f"; a StarGAN generator: its output convolution became the content channels{scaled}, "
                     f"the attention starts at 0")
            self.init = what
            print(f"StarGAN's output convolution -> content channels{scaled}; attention channel at zero (A = 0.5)",
                  flush=True)
        elif alpha != 1:
            raise InputError(f"--init {source}: content_scale={alpha:g} scales a StarGAN generator's output, and this is "
                             f"not one; drop --set content_scale (it applies to --init stargan-… only)")
        return what

    def train(self, *args, **kwargs) -> None:
        if self.recipe.content_scale != 1 and not (self.init and "content_scale" in self.init):
            raise InputError(f"content_scale={self.recipe.content_scale:g} applies to a start from StarGAN: give "
                             f"--init stargan-celeba-64-pdbench (or a StarGAN run), or drop --set content_scale")
        super().train(*args, **kwargs)
