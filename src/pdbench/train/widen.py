"""Function-preserving widening of a trained convolutional generator (Net2WiderNet, Chen et al., ICLR 2016).

A narrow network's weights become the initial weights of the same architecture at a larger width, such
that the wide network computes the same function: every widened channel ``j`` of a layer is a copy of
old channel ``j mod old_width`` (deterministic, so the first ``old_width`` channels are the old ones
unchanged), and each layer that reads a widened activation divides the weights it reads from a
duplicated channel by the number of copies of that channel (their sum is the old weight). Normalisation
layers (InstanceNorm / BatchNorm: affine parameters and running statistics) follow their channels' copy
map; a residual stream keeps one map through every block (the block's output convolution widens with
the map the stream already has, so ``x + f(x)`` stays a copy of the narrow stream).

Exact copies stay exact copies under gradient descent (they receive identical gradients), so a wide
network trained from a noise-free widening never uses its extra width. ``noise`` > 0 breaks the
symmetry: Gaussian noise of standard deviation ``noise × std(W)`` (W the layer's old weight) on the
incoming weights of every *added* channel (never on the original channels), drawn from a seeded
generator; the function then changes by a small, recorded amount.

:func:`widen_net` works on any feed-forward module tree whose children run in registration order and
whose parametrised layers are ``Conv2d``, ``ConvTranspose2d`` (groups 1) or a per-channel norm, with
residual blocks named by the caller (StarGAN's ``ResidualBlock``); :func:`widen_stargan` is the StarGAN
family's use of it (used by ``pdbench train stargan --init … --widen``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class ChannelMap:
    """Which old channel each new channel copies (``index``) and how many copies that old channel has
    in the new layer (``count``, per new channel)."""

    index: torch.Tensor  # (new,) long
    count: torch.Tensor  # (new,) float
    old: int

    @classmethod
    def of(cls, old: int, new: int) -> "ChannelMap":
        if new < old:
            raise InputError(f"cannot widen {old} channels to {new}: the new width must be at least the old one")
        index = torch.arange(new) % old
        return cls(index, torch.bincount(index, minlength=old).float()[index], old)

    def __eq__(self, other) -> bool:
        return (isinstance(other, ChannelMap) and self.old == other.old
                and torch.equal(self.index, other.index))

    __hash__ = None


def _noisy_rows(w: torch.Tensor, out_map: ChannelMap, dim: int, noise: float, std: float,
                gen: torch.Generator | None) -> torch.Tensor:
    """``w`` with noise on the slices (along ``dim``, the output-channel axis) of the added channels."""
    if not noise or w.shape[dim] == out_map.old:
        return w
    added = w.narrow(dim, out_map.old, w.shape[dim] - out_map.old)
    added.add_(torch.randn(added.shape, generator=gen, dtype=added.dtype) * (noise * std))
    return w


def _widen_layer(old: nn.Module, new: nn.Module, name: str, cur: ChannelMap, state: dict, noise: float,
                 gen: torch.Generator | None) -> ChannelMap:
    """Write ``new``'s widened tensors into ``state`` (keys prefixed ``name``); returns the output map."""
    p = f"{name}." if name else ""
    if isinstance(old, (nn.Conv2d, nn.ConvTranspose2d)):
        if old.groups != 1 or new.groups != 1:
            raise InputError(f"widen: {name} is a grouped convolution; only groups=1 layers can be widened")
        if old.in_channels != cur.old or new.in_channels != cur.index.numel():
            raise InputError(f"widen: {name} reads {old.in_channels}→{new.in_channels} channels, the layer before "
                             f"gives {cur.old}→{cur.index.numel()}: the two networks are not the same architecture")
        out = ChannelMap.of(old.out_channels, new.out_channels)
        w = old.weight.detach().float()
        transposed = isinstance(old, nn.ConvTranspose2d)  # weight (in, out, k, k); Conv2d: (out, in, k, k)
        in_dim, out_dim = (0, 1) if transposed else (1, 0)
        shape = [1] * w.dim()
        shape[in_dim] = -1
        wide = w.index_select(out_dim, out.index).index_select(in_dim, cur.index) / cur.count.view(shape)
        state[p + "weight"] = _noisy_rows(wide, out, out_dim, noise, float(w.std()), gen)
        if old.bias is not None:
            state[p + "bias"] = old.bias.detach().float()[out.index]
        return out
    if isinstance(old, nn.modules.batchnorm._NormBase):  # InstanceNorm2d / BatchNorm2d: per-channel tensors
        if old.num_features != cur.old or new.num_features != cur.index.numel():
            raise InputError(f"widen: {name} normalises {old.num_features}→{new.num_features} channels, the layer "
                             f"before gives {cur.old}→{cur.index.numel()}")
        for key, t in old.state_dict().items():
            state[p + key] = t.clone() if key == "num_batches_tracked" else t.detach().float()[cur.index]
        return cur
    raise InputError(f"widen: cannot widen {name} ({type(old).__name__}); only Conv2d, ConvTranspose2d and "
                     f"per-channel norms carry widened parameters")


def _walk(old: nn.Module, new: nn.Module, name: str, cur: ChannelMap, state: dict, noise: float,
          gen: torch.Generator | None, residual: tuple[type, ...]) -> ChannelMap:
    if type(old) is not type(new):
        raise InputError(f"widen: {name} is a {type(old).__name__} in one network and a {type(new).__name__} in the other")
    if isinstance(old, (nn.Conv2d, nn.ConvTranspose2d, nn.modules.batchnorm._NormBase)):
        return _widen_layer(old, new, name, cur, state, noise, gen)
    kids_old, kids_new = dict(old.named_children()), dict(new.named_children())
    if list(kids_old) != list(kids_new):
        raise InputError(f"widen: {name or 'the network'} has other sub-modules in the two networks")
    if not kids_old:
        if any(True for _ in old.parameters(recurse=False)):
            raise InputError(f"widen: cannot widen {name} ({type(old).__name__}): it has parameters of its own")
        return cur  # activations, pooling: channel-wise, nothing to copy
    start = cur
    for k in kids_old:
        cur = _walk(kids_old[k], kids_new[k], f"{name}.{k}" if name else k, cur, state, noise, gen, residual)
    if isinstance(old, residual) and cur != start:
        raise InputError(f"widen: residual block {name} maps {start.old} channels to {cur.old}: its output must "
                         f"widen like its input")
    return cur


def widen_net(old: nn.Module, new: nn.Module, in_channels: int, noise: float = 0.0, seed: int = 0,
              residual: tuple[type, ...] = ()) -> dict[str, torch.Tensor]:
    """The state dict for ``new`` (the same architecture as ``old``, wider) that widens ``old``'s weights.

    ``in_channels``: the input's channel count (the same for both networks). Every key of ``new``'s state
    dict is produced (checked), so the result loads into ``new`` with ``strict=True``.
    """
    if noise < 0:
        raise InputError(f"widen: noise must be ≥ 0, got {noise}")
    gen = torch.Generator().manual_seed(seed) if noise else None
    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        _walk(old, new, "", ChannelMap.of(in_channels, in_channels), state, noise, gen, residual)
    want = new.state_dict()
    if set(state) != set(want):
        missing = sorted(set(want) - set(state))[:3]
        raise InputError(f"widen: {type(new).__name__} has tensors the walk did not reach ({', '.join(missing)})")
    return {k: state[k] for k in want}


@dataclass(frozen=True)
class Widening:
    """What a widening did, for the run's record."""

    old_dim: int
    new_dim: int
    noise: float
    seed: int

    def describe(self) -> str:
        how = f"noise {self.noise:g} × each layer's weight std on the added channels, seed {self.seed}" if self.noise \
            else "noise 0: exactly the same function"
        return f"widened from conv_dim {self.old_dim} to {self.new_dim} (Net2WiderNet: channel j copies j mod {self.old_dim}; {how})"


def widen_stargan(state: dict, conv_dim: int, net_cls: type | None = None, noise: float = 0.0,
                  seed: int = 0) -> tuple[dict[str, torch.Tensor], Widening]:
    """A StarGAN-family generator state dict (``main.*``, official names) widened to ``conv_dim``.

    ``net_cls``: the network class (default :class:`~pdbench.generators.stargan.StarGANNet`; AttentionGAN's
    and Fixed-Point GAN's share the trunk). The width, depth and condition size are read from ``state``.
    Returns the wide state dict (float32) and what was done.
    """
    from ..generators.base import float_state
    from ..generators.stargan import ResidualBlock, StarGANNet

    net_cls = net_cls or StarGANNet
    if "main.0.weight" not in state:
        raise InputError("widen: not a StarGAN generator state dict (no 'main.0.weight')")
    old_dim, in_ch = int(state["main.0.weight"].shape[0]), int(state["main.0.weight"].shape[1])
    repeat = len({k.split(".")[1] for k in state if k.startswith("main.") and ".main." in k})
    old = net_cls(old_dim, in_ch - 3, repeat)
    old.load_state_dict(float_state(state))
    new = net_cls(conv_dim, in_ch - 3, repeat)
    return (widen_net(old, new, in_ch, noise, seed, residual=(ResidualBlock,)),
            Widening(old_dim, conv_dim, float(noise), int(seed)))
