"""Generator contract v2: the Condition object, seeds, chunking, preprocessing records, hooks, and that
StarGAN and AttGAN give bit-for-bit what the v1 call path gave."""

from dataclasses import replace

import pytest
import torch

from pdbench.data.folder import preprocess
from pdbench.errors import InputError, UnknownNameError
from pdbench.generators import (PREPROCESSING, Condition, Generator, Preprocessing, Target, TargetMember, Unsupported,
                                get_generator, preprocessing_record)
from pdbench.generators.attgan import CROP
from pdbench.generators.stargan import StarGAN


class ToyNoisy(Generator):
    """A stochastic toy editor: three 'sampling steps', each mixing in noise drawn from the row seeds."""

    name = "toy-noisy"
    resolution = 8
    attributes = ("a", "b")
    stochastic = True

    def __init__(self):
        super().__init__()
        self.batches = []

    def edit(self, x, attrs, seeds=None, **inputs):
        self.batches.append(x.shape[0])
        noise = self.noise(seeds, (3, 3, 8, 8), device=x.device)  # one draw per step
        y = x
        for step in range(3):
            y = 0.8 * y + 0.2 * noise[:, step] + 0.1 * attrs[:, :1, None, None]
        return y


class ToyShift(Generator):
    """A deterministic toy editor whose network computes in [0, 1] (its record says so)."""

    name = "toy-shift"
    resolution = 8
    attributes = ("a", "b")

    def __init__(self):
        super().__init__()
        self.batches, self.seen = [], []
        self.preprocessing = Preprocessing(crop=0.5, range=(0.0, 1.0), alignment="none", source="test")

    def edit(self, x, attrs, **inputs):
        self.batches.append(x.shape[0])
        self.seen.append((float(x.min()), float(x.max())))
        return (x * (1 - 0.25 * attrs[:, :1, None, None]) + 0.125 * attrs[:, 1:2, None, None]).clamp(0, 1)


class ToySwap(Generator):
    """A toy face swap: the output is the reference where the photo is the target, the photo where it is the source."""

    name = "toy-swap"
    kind = "swap"
    resolution = 8
    inputs = ("reference",)

    def edit(self, x, attrs, reference=None, role=None, **inputs):
        assert attrs is None and reference.shape == x.shape
        return 0.5 * (x + reference) if role == "target" else x - 0.5 * reference.mean(dim=(1, 2, 3), keepdim=True)


def _x(n, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


# -- the condition object -----------------------------------------------------------------------------

BAD = [
    ({}, "condition: empty"),
    ({"attrs": [[0.0, 1.0]]}, "attrs must be a tensor"),
    ({"attrs": torch.zeros(5)}, r"attrs must be a tensor of shape \(N, C\) or \(K, N, C\), got \(5,\)"),
    ({"attrs": torch.tensor([[0.0, float("nan")]])}, "NaN or Inf"),
    ({"reference": torch.zeros(2, 3, 8, 8)}, "role must be 'source'"),
    ({"reference": torch.zeros(2, 3, 8, 8), "role": "victim"}, "got 'victim'"),
    ({"reference": torch.zeros(2, 8, 8)}, "reference must be images"),
    ({"reference": torch.full((2, 3, 8, 8), 3.0), "role": "source"}, r"values span"),
    ({"attrs": torch.zeros(2, 5), "role": "source"}, "without a reference"),
    ({"direction": "  "}, "empty text"),
    ({"direction": ["older", 3]}, "non-empty list of texts"),
    ({"direction": torch.zeros(4)}, r"latent direction must be \(N, D\)"),
    ({"attrs": torch.zeros(5, 2, 3), "direction": ("a", "b")}, r"number of edits \(attrs 5, direction 2\)"),
    ({"attrs": torch.zeros(2, 3), "reference": torch.zeros(3, 3, 8, 8), "role": "source"},
     r"number of images \(attrs 2, reference 3\)"),
    ({"attrs": torch.zeros(2, 3), "seed": -1}, "seed must be a non-negative integer"),
    ({"attrs": torch.zeros(2, 3), "seed": 1.5}, "seed must be a non-negative integer"),
    ({"attrs": torch.zeros(3, 2, 3), "names": ("a", "b")}, "2 names for 3 edits"),
]


@pytest.mark.parametrize("kwargs,match", BAD, ids=[m for _, m in BAD])
def test_bad_conditions_are_one_line(kwargs, match):
    with pytest.raises(InputError, match=match) as e:
        Condition(**kwargs)
    assert "\n" not in str(e.value)


def test_condition_shapes_indexing_and_rows():
    a = torch.arange(3 * 4 * 2, dtype=torch.float32).reshape(3, 4, 2)
    ref = _x(4) * 0.5
    c = Condition(attrs=a, reference=ref, role="target", names=("p", "q", "r"), seed=7)
    assert c.stacked and c.edits == 3 and c.images == 4 and len(c) == 3
    one = c[1]
    assert not one.stacked and torch.equal(one.attrs, a[1]) and torch.equal(one.reference, ref) and one.seed == 7
    sub = c[:, torch.tensor([0, 2])]
    assert sub.stacked and sub.images == 2 and torch.equal(sub.attrs, a[:, [0, 2]]) and sub.names == ("p", "q", "r")
    assert torch.equal(sub.reference, ref[[0, 2]].expand(3, 2, 3, 8, 8))
    assert c[0:2].names == ("p", "q") and [e.attrs.shape for e in c] == [(4, 2)] * 3
    rows = c.rows(4)
    assert rows["attrs"].shape == (12, 2) and torch.equal(rows["attrs"][5], a[1, 1]) and rows["role"] == "target"
    assert torch.equal(rows["reference"][5], ref[1])  # row k·N + i is edit k of image i
    assert Condition(attrs=torch.zeros(2, 3, dtype=torch.long)).attrs.dtype == torch.float32
    text = Condition(direction=("older", "smiling"))
    assert text.stacked and text.edits == 2 and text.images is None
    assert text.rows(3)["direction"] == ("older",) * 3 + ("smiling",) * 3 and text[1].direction == "smiling"
    with pytest.raises(InputError, match="keep the image axis"):
        Condition(attrs=torch.zeros(4, 2))[0]


def test_conditions_the_generator_cannot_take_are_one_line(stargan):
    x = torch.zeros(2, 3, 64, 64)
    for cond, match in ((Condition(attrs=torch.zeros(2, 5), reference=x, role="source"), "stargan: takes no reference"),
                        (Condition(attrs=torch.zeros(3, 5)), r"condition is for 3 image\(s\) but x has 2"),
                        (Condition(attrs=torch.zeros(2, 4)), "attrs must have 5 values per image"),
                        ([[0.0] * 5] * 2, "must be a pdbench Condition or an attribute tensor")):
        with pytest.raises(InputError, match=match) as e:
            stargan.generate(x, cond)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="generate_many takes K edits"):
        stargan.generate_many(x, torch.zeros(2, 5))


# -- seeds ----------------------------------------------------------------------------------------------


def test_stochastic_generator_same_seed_same_noise():
    G = ToyNoisy()
    x, cond = _x(3), Condition(attrs=torch.tensor([[0.0, 1], [1, 0], [1, 1]]).expand(2, 3, 2).clone())
    a = G.generate(x, cond)
    assert a.shape == (2, 3, 3, 8, 8) and torch.equal(a, G.generate(x, cond))  # default seed 0, reproducible
    assert torch.equal(G.generate(x, cond, seed=5), G.generate(x, replace(cond, seed=5)))  # argument = field
    assert (G.generate(x, cond, seed=5) - a).abs().max() > 0.05  # another seed is other noise
    # G(x) and G(x_adv) see the same noise: the disruption of an unchanged image is exactly zero,
    # and a changed image moves the output by the deterministic part only (0.8³ of the change)
    x_adv = x + 0.01
    assert torch.allclose(G.generate(x_adv, cond, seed=3) - G.generate(x, cond, seed=3), 0.8**3 * (x_adv - x), atol=1e-6)
    target = Target([TargetMember(G, cond)])
    clean, again = target.outputs(x)[0], target.outputs(x.clone())[0]
    assert torch.equal(clean, again) and float((clean - again).pow(2).mean()) == 0.0
    # a photo's noise does not depend on its batch
    assert torch.equal(G.generate(x[1:2], cond[:, 1:2]), a[:, 1:2])


# -- chunking -------------------------------------------------------------------------------------------


def test_chunking_gives_the_same_rows():
    G = ToyNoisy()
    x, cond = _x(5, 1), Condition(attrs=torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(2)))
    whole = G.generate(x, cond, seed=1)
    assert G.batches == [15]
    G.batches.clear()
    assert torch.equal(G.generate(x, cond, seed=1, chunk=4), whole) and G.batches == [4, 4, 4, 3]
    G.batches.clear()
    G.chunk_size = 6
    assert torch.equal(G.generate_many(x, cond.attrs, seed=1), whole) and G.batches == [6, 6, 3]
    with pytest.raises(InputError, match="chunk must be a positive number"):
        G.generate(x, cond, chunk=-2)


@pytest.mark.parametrize("name", ["stargan", "attgan"])
def test_chunking_real_generators(name, celeba_test_batch):
    G = get_generator(name)
    x, labels, _ = celeba_test_batch
    pre = G.preprocessing
    assert pre.crop == (CROP if name == "attgan" else 1.0)
    cs = G.conditions(labels[:3] if name == "stargan" else None, 3)
    x = x[:3]
    with torch.inference_mode():
        whole = G.generate_many(x, cs)
        chunked = G.generate(x, G.condition(labels[:3] if name == "stargan" else None, 3), chunk=4)
    assert chunked.shape == whole.shape == (cs.shape[0], 3, 3, 64, 64)
    assert torch.allclose(chunked, whole, atol=1e-5)  # other batch sizes round differently (~1e-6), no more


# -- bit-exact against the v1 call path -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["stargan", "attgan"])
def test_outputs_bit_exact_with_the_v1_call_path(name, celeba_test_batch):
    G = get_generator(name)
    G.fast = False  # the call path against the loaded net; AttGAN's speed path is checked in test_fast_path.py
    x, labels, _ = celeba_test_batch
    x, n = x[:4], 4
    cs = G.conditions(labels[:n] if name == "stargan" else None, n)
    k = cs.shape[0]
    with torch.inference_mode():
        # v1: generate_many = one forward of the K·N rows, generate(x, c) = net(x, c)
        v1_many = G.net(x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:]), cs.reshape(k * n, -1))
        v1_many = v1_many.reshape(k, n, *v1_many.shape[1:])
        v1_one = G.net(x, cs[2])
        assert torch.equal(G.generate_many(x, cs), v1_many)
        assert torch.equal(G.generate(x, Condition(attrs=cs)), v1_many)
        assert torch.equal(Target.of(G, labels[:n] if name == "stargan" else None, n).outputs(x)[0], v1_many)
        assert torch.equal(G.generate(x, cs[2]), v1_one) and torch.equal(G(x, cs[2]), v1_one)
        assert torch.equal(G.generate(x, Condition(attrs=cs[2]), seed=9), v1_one)  # a seed does nothing here


# -- preprocessing records ------------------------------------------------------------------------------


def test_preprocessing_records_per_weights(tmp_path):
    assert preprocessing_record("attgan-celeba-128-official").crop == CROP == 170 / 178
    assert preprocessing_record("stargan-celeba-256-official").size == 256
    assert "yunjey/stargan" in preprocessing_record("stargan").source
    with pytest.raises(UnknownNameError, match="unknown preprocessing record 'stargan-celeba-64'"):
        preprocessing_record("stargan-celeba-64")
    for bad, match in (({"crop": 1.5}, "crop must be a fraction"), ({"alignment": "eyes"}, "alignment must be one of"),
                       ({"range": (1.0, 0.0)}, "low < high"), ({"interpolation": "lanczos"}, "interpolation")):
        with pytest.raises(InputError, match=match):
            Preprocessing(**bad)
    G = get_generator("attgan")
    assert G.weights == "attgan-celeba-64-pdbench" and G.preprocessing.size == 64 and G.crop == CROP
    path = tmp_path / "g.pt"
    torch.save(G.net.state_dict(), path)
    user = get_generator("attgan", checkpoint=str(path), resolution=64)  # a path: AttGAN's official record
    assert user.preprocessing.crop == CROP and "elvisyjlin" in user.preprocessing.source
    chosen = get_generator("attgan", checkpoint=str(path), resolution=64, preprocessing="stargan")
    assert chosen.preprocessing.crop == 1.0 and chosen.crop == 1.0
    with pytest.raises(UnknownNameError, match="unknown preprocessing record"):
        get_generator("attgan", checkpoint=str(path), resolution=64, preprocessing="nope")
    tiny = StarGAN(resolution=32, conv_dim=8, repeat_num=1)  # built, not loaded: the architecture's record
    assert tiny.preprocessing.size == 32 and tiny.preprocessing.crop == 1.0

    class V1(StarGAN):  # a v1-style subclass with a crop class attribute
        crop = 0.8

    assert V1(resolution=16, conv_dim=8, repeat_num=1).preprocessing.crop == 0.8


def test_preprocessing_range_is_converted():
    G = ToyShift()
    x = _x(2) * 0.999
    y = G.generate(x, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    lo, hi = G.seen[0]
    assert lo >= 0.0 and hi <= 1.0  # the network saw [0, 1]
    u = (x + 1) / 2
    want = torch.stack([u[0] * 0.75, u[1] + 0.125]).clamp(0, 1) * 2 - 1
    assert torch.allclose(y, want, atol=1e-6)  # and the output came back to [-1, 1]
    assert G.crop == 0.5 and G.preprocessing.alignment == "none"


def test_the_runner_reads_the_preprocessing_record(celeba_dir, tmp_path, monkeypatch):
    from pdbench.bench import BenchConfig
    from pdbench.bench.runner import _batch, _generator, make_plan

    d = {"name": "t", "dataset": {"path": str(celeba_dir / "images"), "n": 2, "seed": 0},
         "generators": ["stargan"], "defenses": ["none"], "metrics": ["mse"], "batch_size": 2, "out": str(tmp_path)}
    cfg = BenchConfig.from_dict(d)
    plan = make_plan(cfg, torch.device("cpu"), tmp_path)
    assert [c.crop for c in plan.cells] == [1.0]
    monkeypatch.setitem(PREPROCESSING._items, "stargan-celeba-64-pdbench",
                        replace(preprocessing_record("stargan-celeba-64-pdbench"), crop=0.5))
    cell = make_plan(cfg, torch.device("cpu"), tmp_path).cells[0]
    assert cell.crop == 0.5 and cell.batch_dir != plan.cells[0].batch_dir  # another crop, another cache
    from PIL import Image

    from pdbench.tensors import from_uint8

    G = _generator({"name": "stargan"}, "cpu")
    x = _batch(cell, G, torch.device("cpu"))["x"]
    want = from_uint8(preprocess(Image.open(cell.files[0]).convert("RGB"), 64, 0.5))
    assert torch.equal(x[0], want[0] if want.dim() == 4 else want)


# -- hooks, capabilities, reference images ----------------------------------------------------------------


def test_hooks_and_capabilities(stargan, celeba_test_batch):
    x, labels, _ = celeba_test_batch
    x, c = x[:2], stargan.conditions(labels[:2], 2)[0]
    assert stargan.capabilities == {"attrs", "encode", "decode", "features"}
    with torch.inference_mode():
        f = stargan.features(x, c)
        assert list(f) == ["conv", "down1", "down2", "bottleneck", "up1", "up2"]
        width = stargan.net.main[0].out_channels  # conv_dim (16 for the shipped weights)
        assert f["down2"].shape == (2, 4 * width, 16, 16) and f["up2"].shape == (2, width, 64, 64) and torch.equal(f["bottleneck"], stargan.encode(x, c))
        assert torch.equal(stargan.decode(stargan.encode(x, c), c), stargan.generate(x, c))
        A = get_generator("attgan")
        fa = A.features(x)
        depth = len(A.net.enc_layers)  # 4 for the shipped 64 px weights
        assert list(fa) == [f"enc{i}" for i in range(1, depth + 1)] and torch.equal(fa[f"enc{depth}"], A.encode(x))
    toy = ToyNoisy()
    assert toy.capabilities == {"attrs", "stochastic"}
    for hook in (toy.encode, toy.decode, toy.features):
        with pytest.raises(Unsupported, match=r"toy-noisy: has no \w+\(\) hook") as e:
            hook(_x(1))
        assert isinstance(e.value, NotImplementedError) and "\n" not in str(e.value)


def test_reference_condition_and_role():
    G = ToySwap()
    x, ref = _x(3) * 0.5, _x(3, 1) * 0.5
    as_target = G.generate(x, Condition(reference=ref, role="target"))
    assert torch.allclose(as_target, 0.5 * (x + ref))
    stacked = G.generate(x, Condition(reference=torch.stack([ref, -ref]), role="source"))
    assert stacked.shape == (2, 3, 3, 8, 8)
    assert torch.allclose(stacked[1, 2], x[2] + 0.5 * ref[2].mean())
    with pytest.raises(Unsupported, match="toy-swap: takes no attrs"):
        G.generate(x, torch.zeros(3, 2))


def test_v1_subclass_is_adapted():
    """A subclass written for contract v1 overrides generate(x, c) and may call super().generate."""

    class Halved(StarGAN):
        def generate(self, x, c):
            return super().generate(x, c) * 0.5

    torch.manual_seed(0)
    G = Halved(resolution=16, conv_dim=8, repeat_num=1).requires_grad_(False)
    x, cs = _x(2, size=16), torch.eye(5)[:2].expand(3, 2, 5).clone()
    with torch.no_grad():
        ref = G.net(x, cs[1]) * 0.5
        assert torch.equal(G.generate(x, cs[1]), ref) and torch.equal(G(x, cs[1]), ref)
        assert torch.allclose(G.generate_many(x, cs)[1], ref, atol=1e-5)  # one batch of 6 rows rounds differently
        assert torch.allclose(G.generate(x, Condition(attrs=cs), chunk=1)[1], ref, atol=1e-5)
