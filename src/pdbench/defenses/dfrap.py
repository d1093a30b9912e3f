"""DF-RAP (Qu et al., IEEE TIFS 2024): PGD through a differentiable stand-in for social-network compression.

Each sign step maximises MSE(G(C(x_adv), c), G(x, c)), where C imitates what an online social network (OSN)
does to an upload, so that the perturbation still disrupts *after* compression (ZOMIN28/DF_RAP
``attack.py``, ``LinfPGDAttack`` with ``comgan=True``: uniform random start, ε 0.05, α 0.01, k 10; the
reference is the generator's output on the clean, uncompressed image). Two choices of C:

* ``dfrap``: C = ComG (:mod:`pdbench.defenses.comgan`), DF-RAP's compression network, in eval mode.
  The authors' weights cannot be had here, so pdbench ships its own ComG, trained with DF-RAP's
  architecture on (x, libjpeg_q(x)) pairs of CelebA training faces with q from DF-RAP's OSN quality
  distribution (``pdbench train comgan``; docs/model-cards/comgan-celeba-64-pdbench.md). ``comg=PATH``
  takes another ComG checkpoint (e.g. the authors' ``ComG.state_dict()``). There is never a random ComG:
  a missing or corrupt checkpoint is an error.
* ``dfrap-kornia``: C = kornia's differentiable JPEG (``kornia.enhance.jpeg_codec_differentiable``), q
  drawn per image and step from the same OSN distribution (the official ComG's ``isJPEG`` path draws q
  per forward pass), reproducible from (seed, key, step), so a batch equals a per-image loop. ``quality``
  fixes q instead.

The official ``balance`` option (a second, JPEG-free ComG mixed into the output) is not offered: its
default 1.0 uses the one ComG only.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from . import DEFENSES
from .base import ALPHA, EPS, IterativeSignAttack, Record, config_hash, tensor_hash

RECORD = Record(
    paper="DF-RAP: A Robust Adversarial Perturbation for Defending against Deepfakes in Real-world Social Network "
          "Scenarios (Qu, Xi, Lu, Luo, Wang, Li)",
    venue="IEEE TIFS", year=2024, url="https://ieeexplore.ieee.org/document/10458678",
    code="https://github.com/ZOMIN28/DF_RAP (attack.py, net/ComGAN.py, data/qf.txt); PDB's disrupting_methods/df_rap",
    official={"eps": 0.05, "alpha": 0.01, "steps": 10, "random_start": True,
              "loss": "MSE(G(ComG(x_adv)), G(x))", "comg_width": 32, "comg_mode": "eval", "balance": 1.0,
              "osn_quality": {"q": [71, 72, 75, 78, 79, 80, 84, 85, 86, 88, 89, 90, 91, 92, 100],
                              "weights": [0.0132, 0.0268, 0.0127, 0.0573, 0.0156, 0.2213, 0.0107, 0.2193, 0.0110,
                                          0.0107, 0.0120, 0.0120, 0.0171, 0.2272, 0.1331]},
              "pdb": "the same attack, but its reference is G(ComG(x)) and it runs with a randomly initialised ComG "
                     "when none is given"},
    notes="The paper's own tables (OSN disruption rates) are not recorded: its text is not available to pdbench. "
          "pdbench's ComG is its own (width 16, 64 px, 1,050 CPU iterations on libjpeg pairs), not the authors', and "
          "does not yet beat the identity against real JPEG, so dfrap gives PGD's numbers after JPEG 75 "
          "(docs/model-cards/comgan-celeba-64-pdbench.md); dfrap-kornia survives JPEG 75 (MSE 0.115 vs PGD 0.0058).",
)

_COMG: dict = {}


def _comg(checkpoint: str | None, device) -> torch.nn.Module:
    """The ComG of a checkpoint (default: pdbench's shipped one), loaded once per process and device."""
    from .comgan import load_comg

    key = (checkpoint, str(device))
    if key not in _COMG:
        cpu = _COMG.get((checkpoint, "cpu")) or load_comg(checkpoint)
        _COMG[(checkpoint, "cpu")] = cpu
        _COMG[key] = cpu if str(device) == "cpu" else load_comg(checkpoint, device)
    return _COMG[key]


@DEFENSES.register("dfrap")
class DFRAP(IterativeSignAttack):
    """PGD through pdbench's ComG (DF-RAP's compression network)."""

    random_start = True
    objective = "synthesis disruption (compression-robust)"
    record = RECORD

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = 10, seed: int = 0,
                 random_start: bool | None = None, comg: str | None = None):
        self.comg = comg
        if comg is not None:
            _comg(comg, "cpu")  # a bad checkpoint fails now, in one line
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, random_start=random_start)

    def config(self) -> dict:
        return {**super().config(), "comg": self.comg}

    def fingerprint(self) -> str:
        state = dict(_comg(self.comg, "cpu").state_dict())
        return config_hash({"defense": self.name, **self.config(), "comg_weights": tensor_hash(state)})

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        return _comg(self.comg, x_adv.device)(x_adv)


@DEFENSES.register("dfrap-kornia")
class DFRAPKornia(IterativeSignAttack):
    """PGD through kornia's differentiable JPEG at OSN qualities (DF-RAP with an analytic compression model)."""

    random_start = True
    objective = "synthesis disruption (compression-robust)"
    record = RECORD

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = 10, seed: int = 0,
                 random_start: bool | None = None, quality: int | None = None):
        from ..transforms.base import check_param

        if quality is not None:
            quality = int(check_param("dfrap-kornia", "quality", quality, 1, 100, integer=True))
        self.quality = quality
        self._run_keys: torch.Tensor | None = None
        super().__init__(eps=eps, alpha=alpha, steps=steps, seed=seed, random_start=random_start)

    def config(self) -> dict:
        return {**super().config(), "quality": self.quality}

    def qualities(self, keys: torch.Tensor, step: int) -> torch.Tensor:
        """One JPEG quality per image for this step: ``quality``, else drawn from DF-RAP's OSN distribution,
        seeded by (seed, key, step)."""
        from .comgan import sample_quality

        if self.quality is not None:
            return torch.full((len(keys),), float(self.quality))
        qs = [sample_quality(1, torch.Generator().manual_seed((self.seed * 1_000_003 + int(k)) * 1009 + step))[0]
              for k in keys.tolist()]
        return torch.tensor(qs, dtype=torch.float32)

    def transform(self, x_adv: torch.Tensor, step: int) -> torch.Tensor:
        try:
            from kornia.enhance import jpeg_codec_differentiable
        except ImportError:
            raise InputError("dfrap-kornia needs kornia >= 0.9: pip install 'pdbench[kornia]' (or use dfrap)") from None
        keys = self._run_keys if self._run_keys is not None else torch.arange(x_adv.shape[0])
        q = self.qualities(keys, step).to(x_adv.device)
        return jpeg_codec_differentiable((x_adv + 1) * 0.5, q) * 2 - 1

    def protect(self, x, target, keys=None, progress=None):
        self._run_keys = self._keys(x, keys)
        try:
            return super().protect(x, target, keys=self._run_keys, progress=progress)
        finally:
            self._run_keys = None
