"""HiSD (Li et al., CVPR 2021, "Image-to-image Translation via Hierarchical Style Disentanglement"), the
official architecture (imlixinyang/HiSD, ``core/networks.py`` of the released master branch).

The generator is five parts, with the authors' module and parameter names so that the ``gen_test``
state dict of their ``checkpoint_128_celeba-hq.pt`` / ``gen_00600000.pt`` loads with ``strict=True``:

* ``encoder``: a 1×1 convolution and ``DownBlockIN`` residual blocks (instance norm with learned
  ``weight``/``bias`` of shape (1, C, 1), the std unbiased, ``(x − μ)/(σ + 1e-5)``; average-pool down),
  giving the feature map e (1/4 of the image side at the official widths);
* ``translators.i`` (one per tag): a 1×1 convolution, ``MiddleBlock`` residual blocks with AdaIN whose
  per-image scale and shift come from the style by ``style_to_params`` (scale = 1 + the output), then
  ``features`` and ``masks`` 1×1 convolutions: ``e' = f·m + e·(1 − m)``, m = sigmoid — where the
  mask is 0 the features pass through untouched, which is how HiSD keeps an edit to its tag;
* ``extractors``: a shared down-sampling critic-like network whose last 1×1 convolution gives one
  style vector per tag (the reference-guided style, s = E(reference, i));
* ``mappers.i`` (one per tag): an MLP from noise z (``noise_dim`` 32) with one head per attribute
  (``post_models.j``): the latent-guided style s = M(z, i, j);
* ``decoder``: ``UpBlockIN`` blocks (nearest up-sampling) and a 1×1 convolution to RGB, no tanh.

An edit (the official ``test.py``/``easy_use.py``) is ``decoder(T_i(encoder(x), s))``, one step per
tag, steps chained in tag order; no step at all is the non-translation path ``decoder(encoder(x))``
(trained to reconstruct x). The image is returned clamped to [-1, 1] (the official test saves
``(x + 1)/2`` through ``save_image``, which clamps).

The condition in pdbench's terms (:class:`~pdbench.generators.base.Condition`):

* ``attrs`` (N, 5) over ``ATTRS`` = Bangs, Eyeglasses, Black_Hair, Blond_Hair, Brown_Hair, each in
  {-1, 0, 1}: Bangs +1 → tag Bangs to 'with', −1 → 'without', 0 → Bangs untouched; the same for
  Eyeglasses; a +1 in one hair column → tag HairColor to that colour (black, blond, brown), all three
  0 → hair untouched. So a row asks for up to three chained steps; all zeros is the reconstruction.
* ``seed``: the noise z of each latent-guided step (per row from ``row_seeds``, one z per tag), so
  G(x) and G(x_adv) get the same style.
* ``reference`` (with ``role="target"``: x is the face edited, the reference lends a tag's style):
  every tag the row's ``attrs`` touch takes its style from the reference image, s = E(ref, i)
  (reference-guided, as CMUA-Watermark attacks HiSD with a glasses reference); the sign or colour is
  then the reference's, not the attrs'.

The official test edits (:meth:`HiSD.conditions`): Bangs flipped (to 'with' for a face without bangs,
'without' for one with), Eyeglasses flipped likewise, and the hair colour set to each of black, blond,
brown — latent-guided, one step each. Preprocessing: the official ``test.py`` resizes CelebA-HQ faces
(already square and aligned) to ``new_size`` and normalises to [-1, 1]; pdbench's 64 px weights are
trained on CelebA's aligned crops (centre square, resize).

Hooks: :meth:`HiSD.encode` (the encoder's map e, what latent attacks such as LEAT target; it needs no
condition), :meth:`HiSD.decode` (translations of a condition, then the decoder) and
:meth:`HiSD.features` (encoder, translated and decoder maps).

The repository's ``dev`` branch has another generator (modulated convolutions, noise inputs); its
released checkpoints are the master branch's, which is what this module builds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AssetCorruptError, InputError
from ..tensors import check_images
from . import GENERATORS
from .base import Generator, Preprocessing, checkpoint_state, register_preprocessing, row_seeds

# the official CelebA-HQ tags (configs/celeba-hq.yaml) and how preprocessors/celeba-hq.py sorts faces into them
TAGS: tuple[tuple[str, tuple[str, ...]], ...] = (("Bangs", ("with", "without")), ("Eyeglasses", ("with", "without")),
                                                 ("HairColor", ("black", "blond", "brown")))
ATTRS = ("Bangs", "Eyeglasses", "Black_Hair", "Blond_Hair", "Brown_Hair")  # the columns of attrs (and of labels)
TAG_IRRELEVANT = ("Male", "Young")  # the discriminator's tag-irrelevant conditions y (training only)
SQRT2 = math.sqrt(2)

OFFICIAL = "imlixinyang/HiSD core/test.py: Resize(new_size) of CelebA-HQ faces, Normalize(0.5, 0.5)"
register_preprocessing(Preprocessing(crop=1.0, alignment="ffhq", source=OFFICIAL), "hisd")
register_preprocessing(Preprocessing(128, 1.0, "ffhq", source=OFFICIAL), "hisd-celeba-hq-128-official")
register_preprocessing(Preprocessing(256, 1.0, "ffhq", source=OFFICIAL), "hisd-celeba-hq-256-official")
register_preprocessing(Preprocessing(64, 1.0, "celeba", source="pdbench train hisd (CelebA aligned crops: centre square, resize)"),
                       "hisd-celeba-64-pdbench")


# -- the official building blocks ----------------------------------------------------------------------


def _instance_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The official (adaptive) instance norm: (x − mean) / (unbiased std + eps) · weight + bias, weight
    and bias (1 or N, C, 1)."""
    n, c, h, w = x.shape
    v = x.reshape(n, c, h * w)
    out = (v - v.mean(-1, keepdim=True)) / (v.std(-1, keepdim=True) + eps) * weight + bias
    return out.reshape(n, c, h, w)


class InstanceNorm2d(nn.Module):
    """Instance norm with learned (1, C, 1) ``weight`` and ``bias`` (the official class)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(1, num_features, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _instance_norm(x, self.weight, self.bias, self.eps)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class DownBlock(nn.Module):
    """Residual down-sampling block without normalisation (extractors, discriminator)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, in_dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_dim, out_dim, 3, 1, 1)
        self.sc = nn.Conv2d(in_dim, out_dim, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(_lrelu(F.avg_pool2d(self.conv1(_lrelu(x)), 2)))
        return (F.avg_pool2d(self.sc(x), 2) + out) / SQRT2


class DownBlockIN(nn.Module):
    """Residual down-sampling block with instance norm (the encoder)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, in_dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_dim, out_dim, 3, 1, 1)
        self.in1 = InstanceNorm2d(in_dim)
        self.in2 = InstanceNorm2d(in_dim)
        self.sc = nn.Conv2d(in_dim, out_dim, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(_lrelu(self.in2(F.avg_pool2d(self.conv1(_lrelu(self.in1(x))), 2))))
        return (F.avg_pool2d(self.sc(x), 2) + out) / SQRT2


class UpBlockIN(nn.Module):
    """Residual up-sampling block (nearest ×2) with instance norm (the decoder)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, 1, 1)
        self.in1 = InstanceNorm2d(in_dim)
        self.in2 = InstanceNorm2d(out_dim)
        self.sc = nn.Conv2d(in_dim, out_dim, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        out = self.conv2(_lrelu(self.in2(self.conv1(up(_lrelu(self.in1(x)))))))
        return (up(self.sc(x)) + out) / SQRT2


class MiddleBlock(nn.Module):
    """Residual block with two AdaINs (the translators); their per-image parameters are passed in
    (the official code assigns them to ``AdaptiveInstanceNorm2d`` modules before each forward)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, 1, 1)
        self.sc = nn.Conv2d(in_dim, out_dim, 1, 1, 0, bias=False)
        self.adain_dims = (in_dim, out_dim)

    def forward(self, x: torch.Tensor, p1: tuple[torch.Tensor, torch.Tensor], p2: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        out = self.conv2(_lrelu(_instance_norm(self.conv1(_lrelu(_instance_norm(x, *p1))), *p2)))
        return (self.sc(x) + out) / SQRT2


class LinearBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(F.relu(x))


class Extractors(nn.Module):
    """One style per tag from an image: (B, num_tags, style_dim), ``forward(x, i)`` tag i's."""

    def __init__(self, channels: list[int], style_dim: int, num_tags: int, input_dim: int = 3):
        super().__init__()
        self.num_tags = num_tags
        self.model = nn.Sequential(nn.Conv2d(input_dim, channels[0], 1, 1, 0),
                                   *[DownBlock(channels[i], channels[i + 1]) for i in range(len(channels) - 1)],
                                   nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels[-1], style_dim * num_tags, 1, 1, 0))

    def forward(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.model(x).view(x.shape[0], self.num_tags, -1)[:, i]


class Translator(nn.Module):
    """One tag's translator: e' = f·m + e·(1 − m), f and m from AdaIN blocks driven by the style s."""

    def __init__(self, in_dim: int, channels: list[int], out_dim: int, style_dim: int):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(in_dim, channels[0], 1, 1, 0),
                                   *[MiddleBlock(channels[i], channels[i + 1]) for i in range(len(channels) - 1)])
        n_params = sum(2 * d for blk in self.model[1:] for d in blk.adain_dims)
        self.style_to_params = nn.Linear(style_dim, n_params)
        self.features = nn.Sequential(nn.Conv2d(channels[-1], out_dim, 1, 1, 0))
        self.masks = nn.Sequential(nn.Conv2d(channels[-1], out_dim, 1, 1, 0), nn.Sigmoid())

    def parts(self, e: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(translated e', features f, mask m)."""
        p = self.style_to_params(s)
        h = self.model[0](e)
        pos = 0
        for blk in self.model[1:]:
            adain = []
            for d in blk.adain_dims:  # the official order: bias, then weight − 1, for adain1 then adain2
                bias = p[:, pos:pos + d].reshape(-1, d, 1)
                weight = p[:, pos + d:pos + 2 * d].reshape(-1, d, 1) + 1
                adain.append((weight, bias))
                pos += 2 * d
            h = blk(h, *adain)
        f, m = self.features(h), self.masks(h)
        return f * m + e * (1 - m), f, m

    def forward(self, e: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.parts(e, s)[0]


class Mapper(nn.Module):
    """One tag's mapping network: noise z -> the style of attribute j (one head per attribute)."""

    def __init__(self, noise_dim: int, pre: list[int], post: list[int], style_dim: int, num_attributes: int):
        super().__init__()
        self.pre_model = nn.Sequential(nn.Linear(noise_dim, pre[0]), *[LinearBlock(pre[i], pre[i + 1]) for i in range(len(pre) - 1)])
        self.post_models = nn.ModuleList([
            nn.Sequential(*[LinearBlock(post[i], post[i + 1]) for i in range(len(post) - 1)], nn.Linear(post[-1], style_dim))
            for _ in range(num_attributes)])

    def forward(self, z: torch.Tensor, j: int) -> torch.Tensor:
        return self.post_models[j](self.pre_model(z))


def official_channels(dim: int = 64, resolution: int = 128) -> dict:
    """The widths of ``configs/celeba-hq.yaml`` (dim 64 at 128 px) scaled by dim / 64: encoder
    [d, 2d, 4d], eight translator widths d, decoder [4d, 2d, d], extractors and discriminator
    [d, 2d, …, 32d] (at 256 px ``celeba-hq_256.yaml``'s [d/2, d, …, 8d, 8d, 8d])."""
    d = int(dim)
    if resolution >= 256:
        down = [max(1, d // 2), d, 2 * d, 4 * d, 8 * d, 8 * d, 8 * d]
    else:
        down = [d * 2 ** k for k in range(6)]
    return {"encoder": [d, 2 * d, 4 * d], "translators": [d] * 8, "decoder": [4 * d, 2 * d, d],
            "extractors": down, "discriminators": down}


class HiSDNet(nn.Module):
    """The official ``Gen``: encoder, translators, extractors, mappers and decoder (names as the authors')."""

    def __init__(self, encoder: list[int], translators: list[int], decoder: list[int], extractors: list[int],
                 style_dim: int = 256, noise_dim: int = 32, mapper_pre: list[int] = (256, 256, 256),
                 mapper_post: list[int] = (256, 256, 256), tags=TAGS, input_dim: int = 3):
        super().__init__()
        self.tags = tuple(tags)
        self.style_dim, self.noise_dim = style_dim, noise_dim
        self.encoder = nn.Sequential(nn.Conv2d(input_dim, encoder[0], 1, 1, 0),
                                     *[DownBlockIN(encoder[i], encoder[i + 1]) for i in range(len(encoder) - 1)])
        self.decoder = nn.Sequential(*[UpBlockIN(decoder[i], decoder[i + 1]) for i in range(len(decoder) - 1)],
                                     nn.Conv2d(decoder[-1], input_dim, 1, 1, 0))
        self.extractors = Extractors(list(extractors), style_dim, len(self.tags), input_dim)
        self.translators = nn.ModuleList([Translator(encoder[-1], list(translators), decoder[0], style_dim) for _ in self.tags])
        self.mappers = nn.ModuleList([Mapper(noise_dim, list(mapper_pre), list(mapper_post), style_dim, len(a))
                                      for _, a in self.tags])

    # the official method names
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, e: torch.Tensor) -> torch.Tensor:
        return self.decoder(e)

    def extract(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return self.extractors(x, i)

    def map(self, z: torch.Tensor, i: int, j: int) -> torch.Tensor:
        return self.mappers[i](z, j)

    def translate(self, e: torch.Tensor, s: torch.Tensor, i: int) -> torch.Tensor:
        return self.translators[i](e, s)


class HiSDDiscriminator(nn.Module):
    """The official ``Dis``: a shared down-sampling trunk and, per tag, a 1×1 head on [features, style,
    tag-irrelevant conditions] with two outputs per attribute (translated, cycle)."""

    def __init__(self, channels: list[int], style_dim: int = 256, tags=TAGS, tag_irrelevant_dim: int = 2, input_dim: int = 3):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(input_dim, channels[0], 1, 1, 0),
                                  *[DownBlock(channels[i], channels[i + 1]) for i in range(len(channels) - 1)],
                                  nn.AdaptiveAvgPool2d(1))
        self.fcs = nn.ModuleList([nn.Sequential(nn.Conv2d(channels[-1] + style_dim + tag_irrelevant_dim, 2 * len(a), 1, 1, 0))
                                  for _, a in tags])

    def forward(self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor, i: int) -> torch.Tensor:
        """(B, 2, attributes of tag i): [:, 0] the translated-image score, [:, 1] the cycle score."""
        f = self.conv(x)
        tile = lambda t: t.reshape(t.shape[0], -1, 1, 1).expand(-1, -1, f.shape[2], f.shape[3])  # noqa: E731
        return self.fcs[i](torch.cat([f, tile(s), tile(y.to(f.dtype))], 1)).view(f.shape[0], 2, -1)


def infer_config(state: dict) -> dict:
    """HiSDNet's constructor arguments from a (official or pdbench) ``gen`` state dict's shapes."""
    def chain(prefix: str, first: str, conv: str) -> list[int]:
        out = [int(state[f"{prefix}.{first}"].shape[0])]
        k = 1
        while f"{prefix}.{k}.{conv}.weight" in state:
            out.append(int(state[f"{prefix}.{k}.{conv}.weight"].shape[0]))
            k += 1
        return out

    try:
        encoder = chain("encoder", "0.weight", "conv2")
        translators = chain("translators.0.model", "0.weight", "conv2")
        extractors = chain("extractors.model", "0.weight", "conv2")
        decoder, k = [], 0
        while f"decoder.{k}.conv1.weight" in state:
            decoder.append(int(state[f"decoder.{k}.conv1.weight"].shape[1]))
            k += 1
        decoder.append(int(state[f"decoder.{k}.weight"].shape[1]))
        style_dim = int(state["translators.0.style_to_params.weight"].shape[1])
        noise_dim = int(state["mappers.0.pre_model.0.weight"].shape[1])
        pre = chain("mappers.0.pre_model", "0.weight", "linear")
        post, k = [], 0
        while f"mappers.0.post_models.0.{k}.linear.weight" in state:
            post.append(int(state[f"mappers.0.post_models.0.{k}.linear.weight"].shape[1]))
            k += 1
        post.append(int(state[f"mappers.0.post_models.0.{k}.weight"].shape[1]))
    except KeyError as e:
        raise AssetCorruptError(f"not a HiSD generator state dict (no {e.args[0]!r}); pass the 'gen_test' (or 'gen') "
                                "state of a HiSD checkpoint") from None
    n_tags = len({k.split(".")[1] for k in state if k.startswith("translators.")})
    heads = [len({k.split(".")[3] for k in state if k.startswith(f"mappers.{i}.post_models.")}) for i in range(n_tags)]
    if tuple(heads) != tuple(len(a) for _, a in TAGS):
        raise AssetCorruptError(f"a HiSD generator with tags of {heads} attributes; pdbench's HiSD has the official "
                                f"CelebA-HQ tags {[t for t, _ in TAGS]} with {[len(a) for _, a in TAGS]} attributes")
    return {"encoder": encoder, "translators": translators, "decoder": decoder, "extractors": extractors,
            "style_dim": style_dim, "noise_dim": noise_dim, "mapper_pre": pre, "mapper_post": post}


def steps_of(attrs: torch.Tensor) -> list[list[int | None]]:
    """Per tag, each row's target attribute index (None: the tag is untouched), from attrs (B, 5) in
    {-1, 0, 1} (see the module notes); one line for a value HiSD cannot take."""
    a = attrs.detach().round()
    if not bool((attrs.detach() == a).all()) or bool((a.abs() > 1).any()):
        raise InputError("hisd: attrs take -1, 0 or 1 (Bangs, Eyeglasses: +1 with, -1 without, 0 untouched; "
                         "a hair colour +1 sets it, 0 leaves hair untouched); build them with conditions()")
    hair = a[:, 2:5]
    if bool((hair < 0).any()) or bool((hair.sum(1) > 1).any()):
        raise InputError("hisd: at most one hair colour per row, set to +1 (Black_Hair, Blond_Hair, Brown_Hair; "
                         "-1 has no meaning for a colour)")
    rows = a.tolist()
    out = []
    for r in rows:
        bangs = None if r[0] == 0 else (0 if r[0] > 0 else 1)
        glasses = None if r[1] == 0 else (0 if r[1] > 0 else 1)
        colour = next((k for k in range(3) if r[2 + k] > 0), None)
        out.append([bangs, glasses, colour])
    return out


def target_conditions(labels: torch.Tensor) -> torch.Tensor:
    """The official test edits from labels (N, 5) in {0, 1} over ATTRS: Bangs flipped, Eyeglasses
    flipped, then each hair colour -> (5, N, 5)."""
    n = labels.shape[0]
    out = []
    for col in (0, 1):
        c = torch.zeros(n, len(ATTRS))
        c[:, col] = 1.0 - 2.0 * (labels[:, col] > 0.5).float()  # with -> without (-1), without -> with (+1)
        out.append(c)
    for col in (2, 3, 4):
        c = torch.zeros(n, len(ATTRS))
        c[:, col] = 1.0
        out.append(c)
    return torch.stack(out)


@GENERATORS.register("hisd")
class HiSD(Generator):
    """HiSD with the official CelebA-HQ tags (Bangs, Eyeglasses, HairColor) and styles from noise or a reference."""

    attributes = ATTRS
    condition_names = ("flip_Bangs", "flip_Eyeglasses", "to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair")
    inputs = ("attrs", "reference")
    stochastic = True
    conditional_encoder = False
    default_asset = "hisd-celeba-64-pdbench"
    # why pdbench's own weights must not be used for reported numbers (a checkpoint path clears it)
    experimental: str | None = ("pdbench's 64 px weights: 453 iterations of the official recipe (of 200,000) at width 8 on "
                                "a CPU; the outputs are not yet faces and the edits are not real "
                                "(docs/model-cards/hisd-celeba-64-pdbench.md); not for reported numbers")

    def __init__(self, resolution: int = 128, net: HiSDNet | None = None, **config):
        """HiSD at ``resolution`` around ``net`` (e.g. a network being trained), else a new HiSDNet of
        ``config`` (default: the official widths of configs/celeba-hq.yaml, celeba-hq_256.yaml at 256 px)."""
        super().__init__()
        self.resolution = resolution
        if net is None:
            if not config:
                config = {k: v for k, v in official_channels(64, resolution).items() if k != "discriminators"}
            net = HiSDNet(**config)
        self.net = net

    @classmethod
    def from_assets(cls, checkpoint: str | None = None, asset: str | None = None, resolution: int | None = None,
                    device: str | torch.device = "cpu", preprocessing: str | None = None) -> "HiSD":
        """pdbench's weights (default ``default_asset``) or an official/user checkpoint path, loaded strictly:
        the authors' files hold ``{'gen': …, 'gen_test': …}`` and their test code uses ``gen_test`` (the
        moving average), as this does; a plain state dict loads as it is. A checkpoint path clears
        ``experimental`` (it describes pdbench's shipped weights)."""
        asset = asset or cls.default_asset
        state, path, meta = checkpoint_state(checkpoint, asset)
        if isinstance(state.get("gen_test"), dict):
            state = state["gen_test"]
        elif isinstance(state.get("gen"), dict):
            state = state["gen"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            config = infer_config(state)
        except AssetCorruptError as e:
            raise AssetCorruptError(f"{path}: {e}") from None
        model = cls(resolution or int(meta.get("resolution", 128)), **config)
        return model._loaded(state, checkpoint, asset, preprocessing, device)

    # -- interface -------------------------------------------------------------------------------
    def conditions(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """The five official test edits (K = 5, N, 5); without labels every face counts as having
        neither bangs nor glasses (both flips then add them, as the official ``test.py`` steps do)."""
        if labels is None:
            labels = torch.zeros(n, len(ATTRS))
        if labels.shape != (n, len(ATTRS)):
            raise InputError(f"{self.name}: expected labels of shape ({n}, {len(ATTRS)}) for {ATTRS}, got {tuple(labels.shape)}")
        return target_conditions(labels.float())

    def unedited(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        """No step: decoder(encoder(x)), the non-translation path trained to return x."""
        return torch.zeros(n, len(ATTRS))

    def _check(self, x: torch.Tensor, what: str = "input") -> None:
        check_images(x, f"{self.name} {what}")
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise InputError(f"{self.name}: expects {self.resolution}x{self.resolution} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; resize with pdbench.data (or load a checkpoint for that resolution)")

    def styles(self, steps: list[list[int | None]], seeds: torch.Tensor | None, reference: torch.Tensor | None,
               device, dtype) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per tag: (rows that take a step, their styles (R, style_dim)) or None when no row does.
        Latent-guided: z of row b for tag i is ``noise(seeds)[b, i]``; reference-guided: E(ref, i)."""
        net = self.net
        z = None
        if reference is None:
            if seeds is None:
                seeds = row_seeds(0, 1, len(steps))
            z = self.noise(seeds, (len(net.tags), net.noise_dim), device=device, dtype=dtype)
        out = []
        for i in range(len(net.tags)):
            rows = [b for b, st in enumerate(steps) if st[i] is not None]
            if not rows:
                out.append(None)
                continue
            idx = torch.tensor(rows, device=device)
            if reference is not None:
                s = net.extract(reference[idx], i)
            else:
                s = torch.empty(len(rows), net.style_dim, device=device, dtype=dtype)
                for j in sorted({steps[b][i] for b in rows}):
                    sel = [r for r, b in enumerate(rows) if steps[b][i] == j]
                    sel_t = torch.tensor(sel, device=device)
                    s = s.index_copy(0, sel_t, net.map(z[idx[sel_t], i], i, j))
            out.append((idx, s))
        return out

    def _translate(self, e: torch.Tensor, styles) -> torch.Tensor:
        for i, st in enumerate(styles):
            if st is None:
                continue
            idx, s = st
            if idx.numel() == e.shape[0]:
                e = self.net.translate(e, s, i)
            else:
                e = e.index_copy(0, idx, self.net.translate(e[idx], s, i))
        return e

    def edit(self, x: torch.Tensor, attrs: torch.Tensor | None, **inputs) -> torch.Tensor:
        """One forward of B rows: encode, one translation per tag the row asks for (tag order), decode."""
        self._check(x)
        ref = inputs.get("reference")
        if ref is not None:
            if inputs.get("role") != "target":
                raise InputError(f"{self.name}: a reference lends a tag's style to the photo: give role='target' "
                                 f"(the protected photo is the face edited), got {inputs.get('role')!r}")
            self._check(ref, "reference")
            if attrs is None:
                raise InputError(f"{self.name}: a reference-guided edit needs attrs naming the tag(s) the reference's "
                                 f"style goes to (e.g. Eyeglasses +1: [0, 1, 0, 0, 0])")
        if attrs is None:
            raise InputError(f"{self.name}: needs attrs (the tags to edit; see conditions())")
        steps = steps_of(attrs)
        e = self.net.encode(x)
        e = self._translate(e, self.styles(steps, inputs.get("seeds"), ref, x.device, x.dtype))
        return self.net.decode(e).clamp(-1, 1)

    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's feature map e (before any translation; the condition is not used): what
        latent-level defenses attack."""
        self._check(x)
        return self.net.encode(x)

    def decode(self, h: torch.Tensor, c: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """The latent-guided translations of condition c (B, 5) with the noise of ``generate(…, seed)``
        for one edit, then the decoder: ``decode(encode(x), c) == generate(x, c)``."""
        if c is None:
            raise InputError(f"{self.name}: decode needs the condition c (the translations happen after the encoder)")
        steps = steps_of(c)
        e = self._translate(h, self.styles(steps, row_seeds(seed, 1, h.shape[0]), None, h.device, h.dtype))
        return self.net.decode(e).clamp(-1, 1)

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
        """The activations after each encoder block (``enc1`` …; the last is ``latent``, = :meth:`encode`),
        after the translations of c (``translated``, latent-guided with the noise of ``generate(…, seed)``;
        without c: the latent itself) and after each decoder block (``dec1`` …), for feature-level objectives."""
        self._check(x)
        out, h = {}, x
        enc = self.net.encoder
        for k, layer in enumerate(enc):
            h = layer(h)
            if k:
                out["latent" if k == len(enc) - 1 else f"enc{k}"] = h
        if c is not None:
            h = self._translate(h, self.styles(steps_of(c), row_seeds(seed, 1, h.shape[0]), None, h.device, h.dtype))
        out["translated"] = h
        for k, layer in enumerate(self.net.decoder[:-1]):
            h = layer(h)
            out[f"dec{k + 1}"] = h
        return out
