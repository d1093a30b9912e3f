"""The generator interface and the defense target (one generator or an ensemble, with conditions).

A generator takes images in the pdbench convention (:mod:`pdbench.tensors`) and an edit condition
tensor ``c`` of shape ``(N, C)``. ``conditions(labels, n)`` returns the stacked edit conditions the
method's official test code applies to each image, shape ``(K, N, C)``; ``generate_many`` runs all K
edits of all N images as a single batched forward pass of ``K * N`` images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


class Generator(nn.Module):
    name: str = "?"
    resolution: int = 0
    condition_names: tuple[str, ...] = ()
    kind: str = "attribute"  # "attribute" editor or "swap"
    crop: float = 1.0  # official preprocessing: centre square of crop × the short side, then resize

    def generate(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        raise NotImplementedError

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The condition (N, C) that asks for no change (the image's own attributes): reconstruction."""
        raise NotImplementedError

    conditional_encoder: bool = True  # whether encode() needs the condition (StarGAN) or not (AttGAN)

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's latent (bottleneck feature map) of x under condition c: what latent-level
        defenses (LEAT) attack. Generators without an encoder raise NotImplementedError."""
        raise NotImplementedError

    def decode(self, h, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the latent(s) of :meth:`encode` (``decode(encode(x, c), c) == generate(x, c)``)."""
        raise NotImplementedError

    def generate_many(self, x: torch.Tensor, cs: torch.Tensor) -> torch.Tensor:
        """x (N,3,H,W), cs (K,N,C) -> (K,N,3,H,W) in one batched forward."""
        k, n = cs.shape[:2]
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        out = self.generate(xs, cs.reshape(k * n, -1))
        return out.reshape(k, n, *out.shape[1:])

    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of every parameter and buffer: which weights produced a result."""
        import hashlib

        h = hashlib.sha256()
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # nn.Module protocol
        return self.generate(x, c)


def checkpoint_state(checkpoint: str | None, asset: str) -> tuple[dict, str, dict]:
    """The state dict of an explicit checkpoint path, else of the registered asset (checksum-verified),
    with where it came from (for messages) and the asset's metadata (``{}`` for a path)."""
    from ..assets import ASSETS, load_state_dict, resolve

    if checkpoint is not None:
        return load_state_dict(checkpoint), str(checkpoint), {}
    spec = ASSETS.get(asset)
    path = resolve(asset)
    return load_state_dict(path, asset=spec), str(path), spec.meta


def strict_load_error(err: RuntimeError, source: str, few: int = 3):
    """One line from a strict ``load_state_dict`` failure: which keys are missing, unexpected or of
    another shape (a few names each), i.e. a checkpoint of another architecture."""
    import re

    from ..errors import AssetCorruptError

    text = str(err)
    if "state_dict" not in text:
        return err
    parts = []
    for what, pat in (("missing", r'Missing key\(s\) in state_dict: ([^\n]*)'),
                      ("unexpected", r'Unexpected key\(s\) in state_dict: ([^\n]*)')):
        m = re.search(pat, text)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:few])}{', ...' if len(keys) > few else ''})")
    shapes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch.Size\(\[([^\]]*)\]\) from "
                        r"checkpoint, the shape in current model is torch.Size\(\[([^\]]*)\]\)", text)
    if shapes:
        shown = ", ".join(f"{k} [{a}] vs [{b}]" for k, a, b in shapes[:few])
        parts.append(f"{len(shapes)} of another shape ({shown}{', ...' if len(shapes) > few else ''})")
    return AssetCorruptError(f"checkpoint {source} does not fit this architecture: {'; '.join(parts) or text.splitlines()[0]}; "
                             "pass a checkpoint of this generator (or the generator it was trained for)")


def float_state(state: dict) -> dict:
    """Floating-point tensors in float32 (shipped weights are float16), the rest unchanged."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


@dataclass
class TargetMember:
    generator: Generator
    conditions: torch.Tensor  # (K, N, C)
    weight: float = 1.0


@dataclass
class Target:
    """What a defense attacks: one or several generators, each with the conditions per image."""

    members: list[TargetMember] = field(default_factory=list)

    @classmethod
    def of(cls, generator: Generator, labels: torch.Tensor | None, n: int) -> "Target":
        return cls([TargetMember(generator, generator.conditions(labels, n))])

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [m.generator.generate_many(x, m.conditions.to(x.device)) for m in self.members]

    def subset(self, idx: torch.Tensor | slice) -> "Target":
        return Target([TargetMember(m.generator, m.conditions[:, idx], m.weight) for m in self.members])
