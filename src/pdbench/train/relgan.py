"""RelGAN's official training recipe (elvisyjlin/RelGAN-PyTorch: ``nn.py`` ``GAN.train_D``/``train_G``, ``train.py`` defaults).

Every iteration draws three random batches a, b, c with their labels and the relative vectors
v_ab = c_b − c_a, v_ac = c_c − c_a, v_cb = c_b − c_c (the paper's sign; the PyTorch code's
``att_a − att_b`` is the same recipe with the opposite sign, see :mod:`pdbench.generators.relgan`),
then one critic and one generator update (``iterG`` = ``iterD`` = 1), all LSGAN (least squares):

* critic: adversarial ``D(a, b, v_ab) → 1``, ``D(a, G(a, v_ab), v_ab) → 0``; matching-aware (the
  conditional head) real pair ``(a, b, v_ab) → 1`` and five wrong ones → 0: the fake, a wrong source
  ``(c, b, v_ab)``, a wrong target ``(a, c, v_ab)``, wrong vectors ``(a, b, v_ac)`` and ``(a, b, v_cb)``;
  the interpolation head on ``G(a, α v_ab)`` (α ~ U(0, 1) per image) regresses min(α, 1 − α) while the
  nearer endpoint (``G(a, 0)`` for α < 0.5, else ``G(a, v_ab)``) regresses 0; a gradient penalty
  (weight ``lambda_gp`` = 150, hard-coded in the official code) on mixes of a and G(a, v_ab) through
  the adversarial head; ``d = df + dc + 150 gp + λ3 di``.
* generator: adversarial and matching-aware heads on (a, G(a, v_ab), v_ab) → 1, the cycle
  ``|a − G(G(a, v_ab), −v_ab)|₁`` (λ1 = 10), the self-reconstruction ``|a − G(a, 0)|₁`` (λ2 = 10),
  the interpolation head on ``G(a, α v_ab)`` → 0 (λ3 = 1) and the orthogonal regulariser
  Σ ‖offdiag(WᵀW)‖²_F over every spatial tap of every k > 1 convolution (λ4 = 1e-4). Terms the
  official loss carries that are constant in G (the real pair's scores) are left out: same gradients.
* Adam lr 5e-5, β (0.5, 0.999), weight decay lr / steps (the official ``decay``), batch 6, random
  horizontal flip, no learning-rate schedule; Conv2d weights Xavier-uniform, ConvTranspose2d
  Kaiming-normal, biases zero (``weights_init``).

``--init`` a StarGAN generator (``stargan-celeba-64-pdbench``, a StarGAN run or a file a StarGAN run
wrote) maps it onto RelGAN's layers, which are StarGAN's in the same order: its convolutions become
``conv_in`` … ``conv_out`` (with zero biases), each instance norm a Switchable Norm with its affine
weights whose switch is ``STARGAN_SWITCH`` = 8 on the instance statistics (softmax weights 0.9993 IN,
0.0003 LN, 0.0003 BN), and StarGAN's critic stack becomes ``convs`` (the three heads start fresh).
The first convolution reads v where StarGAN read the target attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..generators.relgan import ATTRIBUTE_SETS, RelGANDiscriminator, RelGANNet, relative_edits
from ..tensors import to_uint8
from . import TRAINERS
from .fpgan import trained_as_stargan
from .loop import GANTrainer, gradient_penalty

STARGAN_SWITCH = 8.0


@dataclass
class RelGANRecipe:
    resolution: int = 256
    batch_size: int = 6
    iters: int = 400_000  # train.py --steps (config.example.yaml: 200,000)
    g_lr: float = 5e-5
    d_lr: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    lambda1: float = 10.0  # cycle reconstruction
    lambda2: float = 10.0  # self reconstruction G(a, 0) = a
    lambda3: float = 1.0  # interpolation
    lambda4: float = 1e-4  # orthogonal regularisation (config.example.yaml: 1e-6)
    lambda_gp: float = 150.0
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_repeat_num: int = 6
    d_repeat_num: int = 0  # 0: official 6 at 256 px (4 × 4 patches), log2(resolution) − 1 below (2 × 2)
    d_cls_dim: int = 2048
    attribute_set: str = "official17"  # or stargan5 (Black/Blond/Brown hair, Male, Young: ID-Guard's RelGAN)
    holdout: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.attribute_set not in ATTRIBUTE_SETS:
            raise InputError(f"relgan: attribute_set must be one of {', '.join(ATTRIBUTE_SETS)}, got {self.attribute_set!r}")

    def d_repeat(self) -> int:
        if self.d_repeat_num:
            return self.d_repeat_num
        return 6 if self.resolution >= 256 else max(1, int(np.log2(self.resolution)) - 1)


def lsgan(xs, ts) -> torch.Tensor:
    """The official least-squares loss: Σ over the outputs of mean((t − x)²)."""
    return sum(((x.float() - t) ** 2).mean() for x, t in zip(xs, ts))


def orthogonal_penalty(net: nn.Module) -> torch.Tensor:
    """The official regulariser: for every weight of 4 dims with k > 1 and every spatial tap (i, j),
    ‖offdiag(P_ijᵀ P_ij)‖²_F with P_ij = W[:, :, i, j] (vectorised over the taps)."""
    total = None
    for p in net.parameters():
        if p.dim() == 4 and p.shape[3] > 1:
            taps = p.permute(2, 3, 0, 1)  # (kh, kw, out, in)
            w = taps.transpose(-1, -2) @ taps
            w = w - torch.diag_embed(torch.diagonal(w, dim1=-2, dim2=-1))
            t = (w ** 2).sum()
            total = t if total is None else total + t
    return total


def weights_init(m: nn.Module) -> None:
    """The official init: Conv2d Xavier-uniform, ConvTranspose2d Kaiming-normal, biases zero."""
    if isinstance(m, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.ConvTranspose2d):
        nn.init.kaiming_normal_(m.weight)
        nn.init.zeros_(m.bias)


def stargan_generator_to_relgan(state: dict, like: dict) -> dict:
    """A StarGAN generator state dict (``main.0`` … ``main.21``) as RelGAN's (``like``: a RelGAN state
    dict of the same width and depth, for the shapes): same layers in the same order."""
    n_res = len({k.split(".")[1] for k in state if k.startswith("main.") and ".main." in k})
    convs = [("conv_in.0", "main.0", "main.1"), ("down1.0", "main.3", "main.4"), ("down2.0", "main.6", "main.7")]
    for i in range(n_res):
        convs += [(f"resb.{i}.f.0", f"main.{9 + i}.main.0", f"main.{9 + i}.main.1"),
                  (f"resb.{i}.f.3", f"main.{9 + i}.main.3", f"main.{9 + i}.main.4")]
    j = 9 + n_res
    convs += [("up2.0", f"main.{j}", f"main.{j + 1}"), ("up1.0", f"main.{j + 3}", f"main.{j + 4}"),
              ("conv_out.0", f"main.{j + 6}", None)]
    out = {}
    switch = torch.tensor([STARGAN_SWITCH, 0.0, 0.0])
    for conv, s_conv, s_norm in convs:
        w = state[f"{s_conv}.weight"].float()
        out[f"{conv}.weight"] = w
        out[f"{conv}.bias"] = torch.zeros_like(like[f"{conv}.bias"])
        if s_norm is None:
            continue
        norm = conv[:-1] + str(int(conv[-1]) + 1)  # the SwitchNorm after the conv
        c = like[f"{norm}.weight"].shape[1]
        out[f"{norm}.weight"] = state[f"{s_norm}.weight"].float().view(1, c, 1, 1)
        out[f"{norm}.bias"] = state[f"{s_norm}.bias"].float().view(1, c, 1, 1)
        out[f"{norm}.mean_weight"] = switch.clone()
        out[f"{norm}.var_weight"] = switch.clone()
        out[f"{norm}.running_mean"] = torch.zeros(1, c, 1)
        out[f"{norm}.running_var"] = torch.ones(1, c, 1)
    return out


def sample_grid(G: RelGANNet, x: torch.Tensor, labels: torch.Tensor, sign: float = 1.0) -> np.ndarray:
    """Rows: input, the reconstruction G(x, 0), then the five edits (black, blond, brown hair, gender, age)."""
    attrs = ATTRIBUTE_SETS["official17" if G.n_z == 17 else "stargan5"]
    with torch.inference_mode():
        vs = relative_edits(labels.to(x.device), attrs)
        outs = [x, G(x, torch.zeros_like(vs[0]))] + [G(x, sign * v) for v in vs]
    return np.concatenate(list(to_uint8(torch.cat(outs, dim=3))), axis=0)


@TRAINERS.register("relgan")
class RelGANTrainer(GANTrainer):
    Recipe = RelGANRecipe

    @property
    def attributes(self) -> tuple[str, ...]:  # the recipe's attribute set
        return ATTRIBUTE_SETS[self.recipe.attribute_set]

    @staticmethod
    def recipe_options(dim: int | None = None, fc_dim: int | None = None, layers: int | None = None,
                       iters: int | None = None) -> dict:
        if layers is not None:
            raise InputError("--layers applies to attgan; relgan's depth is fixed by its resolution")
        opts = {} if dim is None else {"g_conv_dim": dim, "d_conv_dim": dim}
        if fc_dim is not None:
            opts["d_cls_dim"] = fc_dim
        return opts

    def build(self):
        r = self.recipe
        n_z = len(self.attributes)
        G = RelGANNet(r.g_conv_dim, n_z, r.g_repeat_num)
        D = RelGANDiscriminator(r.d_conv_dim, n_z, r.d_repeat(), r.d_cls_dim)
        G.apply(weights_init)
        D.apply(weights_init)
        return G, D

    def optimizers(self):
        r = self.recipe
        return (torch.optim.Adam(self.G.parameters(), r.g_lr, (r.beta1, r.beta2), weight_decay=r.g_lr / r.iters),
                torch.optim.Adam(self.D.parameters(), r.d_lr, (r.beta1, r.beta2), weight_decay=r.d_lr / r.iters))

    def sample_grid(self) -> np.ndarray:
        self.G.eval()  # the official sampling runs G in eval mode (running statistics)
        try:
            return sample_grid(self.G, self.fixed_x, self.fixed_c)
        finally:
            self.G.train()

    # -- initialisation from StarGAN ------------------------------------------------------------
    def init_from(self, source: str) -> str:
        """As the loop's, and a StarGAN generator (with its critic) initialises RelGAN's (module notes)."""
        if not trained_as_stargan(source):
            return super().init_from(source)
        g_like = {k: v.clone() for k, v in self.G.state_dict().items()}
        d_like = {k: v.clone() for k, v in self.D.state_dict().items()}

        def g_hook(state, prefix, *args):
            if prefix + "main.0.weight" in state:
                conv = stargan_generator_to_relgan({k[len(prefix):]: state.pop(k) for k in list(state)}, g_like)
                state.update({prefix + k: v for k, v in conv.items()})

        def d_hook(state, prefix, *args):
            if prefix + "main.0.weight" in state:
                old = {k[len(prefix):]: state.pop(k) for k in list(state)}
                new = {k: v for k, v in d_like.items()}  # the heads keep their fresh init
                for k, v in old.items():
                    if k.startswith("main."):
                        new["convs." + k[5:]] = v
                state.update({prefix + k: v for k, v in new.items()})

        hooks = [self.G._register_load_state_dict_pre_hook(g_hook), self.D._register_load_state_dict_pre_hook(d_hook)]
        try:
            what = super().init_from(source)
        finally:
            for h in hooks:
                h.remove()
        what += (f"; a StarGAN generator: its layers became RelGAN's (zero biases, Switchable Norms on instance statistics,"
                 f" switch {STARGAN_SWITCH:g}), its critic stack the critic's convs (heads fresh)")
        self.init = what
        print("StarGAN -> RelGAN: convolutions and norms mapped, critic heads fresh", flush=True)
        return what

    # -- one iteration ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        a, att_a = self.batch()
        b, att_b = self.batch()
        c, att_c = self.batch()
        v_ab, v_ac, v_cb = att_b - att_a, att_c - att_a, att_b - att_c
        logs = self.critic_step(a, b, c, v_ab, v_ac, v_cb)
        logs.update(self.generator_step(a, v_ab))
        return logs

    def _alpha(self, n: int) -> torch.Tensor:
        return torch.rand(n, 1, device=self.device, generator=self.gen)

    def critic_step(self, a, b, c, v_ab, v_ac, v_cb) -> dict:
        r, G, D = self.recipe, self.G, self.D
        alpha_i = self._alpha(a.shape[0])
        with torch.no_grad():
            a2b = G(a, v_ab)
            a2a = G(a, torch.zeros_like(v_ab))
            a2bi = G(a, alpha_i * v_ab)
        with self.autocast():
            h_a, h_b, h_c, h_a2b = D.convs(a), D.convs(b), D.convs(c), D.convs(a2b)
            d_real, dc_real = D.heads(h_a, h_b, v_ab)
            d_fake, dc_fake = D.heads(h_a, h_a2b, v_ab)
            dc_w_ori = D.heads(h_c, h_b, v_ab)[1]
            dc_w_tar = D.heads(h_a, h_c, v_ab)[1]
            dc_w_vec1 = D.heads(h_a, h_b, v_ac)[1]
            dc_w_vec2 = D.heads(h_a, h_b, v_cb)[1]
            di_real, di_fake, di_inte = D.interp(D.convs(a2a)), D.interp(h_a2b), D.interp(D.convs(a2bi))
            df = lsgan([d_real, d_fake], [1, 0])
            dc = lsgan([dc_real, dc_fake, dc_w_ori, dc_w_tar, dc_w_vec1, dc_w_vec2], [1, 0, 0, 0, 0, 0])
            alpha = torch.rand(a.shape[0], 1, 1, 1, device=self.device, generator=self.gen)
            mix = (alpha * a + (1 - alpha) * a2b.float()).requires_grad_(True)
            gp = gradient_penalty(D.heads(h_a, D.convs(mix), v_ab)[0].float(), mix)
            real = (alpha_i < 0.5).float()
            di = (real * ((alpha_i - di_inte.float()) ** 2 + di_real.float() ** 2)
                  + (1 - real) * ((1 - alpha_i - di_inte.float()) ** 2 + di_fake.float() ** 2)).mean()
        d_loss = df + dc + r.lambda_gp * gp + r.lambda3 * di
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return {"D/adv": df.detach(), "D/match": dc.detach(), "D/gp": gp.detach(), "D/interp": di.detach()}

    def generator_step(self, a, v_ab) -> dict:
        r, G, D = self.recipe, self.G, self.D
        alpha_i = self._alpha(a.shape[0])
        D.requires_grad_(False)  # gradients flow through the critic to G only
        try:
            with self.autocast():
                a2b = G(a, v_ab)
                a2a = G(a, torch.zeros_like(v_ab))
                a2b2a = G(a2b, -v_ab)
                a2bi = G(a, alpha_i * v_ab)
                with torch.no_grad():
                    h_a = D.convs(a)
                d_fake, dc_fake = D.heads(h_a, D.convs(a2b), v_ab)
                gi = (D.interp(D.convs(a2bi)).float() ** 2).mean()
                gf = lsgan([d_fake], [1])
                gc = lsgan([dc_fake], [1])
                rec1 = (a - a2b2a.float()).abs().mean()
                rec2 = (a - a2a.float()).abs().mean()
            go = orthogonal_penalty(G)
            g_loss = gf + gc + r.lambda1 * rec1 + r.lambda2 * rec2 + r.lambda3 * gi + r.lambda4 * go
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
        finally:
            D.requires_grad_(True)
        return {"G/adv": gf.detach(), "G/match": gc.detach(), "G/cycle": rec1.detach(), "G/self": rec2.detach(),
                "G/interp": gi.detach(), "G/orth": go.detach()}
