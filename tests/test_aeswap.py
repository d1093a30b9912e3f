"""The classic autoencoder face swap (aeswap): the swap contract, its trainer, and the shipped weights
on held-out LFW photos."""

import json

import pytest
import torch

from conftest import require_asset
from pdbench.data import FaceFolder
from pdbench.errors import AssetCorruptError, InputError
from pdbench.generators import Condition, get_generator
from pdbench.generators.aeswap import CROP, IDENTITIES, AESwap, AESwapNet, identity_split, paste_mask


@pytest.fixture(scope="module")
def lfw():
    return FaceFolder(require_asset("lfw-gray-250") / "images", 64, crop=CROP, check_files=False)


@pytest.fixture(scope="module")
def held(lfw):
    """4 held-out photos of each identity (never trained on), their identity (0/1)."""
    _, h = identity_split(lfw.files)
    return lfw.load(h[0][:4] + h[1][:4]), torch.tensor([0] * 4 + [1] * 4)


def _onehot(k):
    return torch.nn.functional.one_hot(k, 2).float()


def test_split_holds_out_the_last_photos_of_each_identity(lfw):
    train, held = identity_split(lfw.files)
    assert [len(t) for t in train] == [530 - 32, 236 - 32] and [len(h) for h in held] == [32, 32]
    for name, t, h in zip(IDENTITIES, train, held):
        names = [lfw.files[i].name for i in t + h]
        assert all(n.startswith(name + "_") for n in names) and max(t) < min(h)  # sorted: the last ones held out
    with pytest.raises(InputError, match="photo\\(s\\) of George_W_Bush"):
        identity_split(lfw.files[:100])


def test_swap_contract_on_a_random_network(held):
    """Shapes, range, the paste mask and the hooks (weights do not matter for these)."""
    torch.manual_seed(0)
    g = AESwap(dim=8, latent=16).eval().requires_grad_(False)
    x, who = held
    out = g.generate(x, g.condition(None, 8))  # both decoders: (2, N, 3, 64, 64)
    assert out.shape == (2, 8, 3, 64, 64) and float(out.abs().max()) <= 1.0
    m = paste_mask(64, 64)[0, 0]
    assert torch.equal(out[:, :, :, m == 0], x[None].expand(2, -1, -1, -1, -1)[:, :, :, m == 0])  # background untouched
    assert float(m.mean()) > 0.2 and m[40, 32] == 1 and m[2, 2] == 0
    c = g.swap_condition(_onehot(who), 8)
    assert torch.equal(c[0].argmax(1), 1 - who)
    y = g.generate(x, c)
    with torch.no_grad():
        assert torch.allclose(g.decode(g.encode(x), c[0], x=x), y[0], atol=1e-6)
        # row by row, each with its own decoder, is the batch
        assert torch.allclose(torch.cat([g.generate(x[i:i + 1], c[:, i:i + 1]) for i in range(8)], 1), y, atol=1e-5)
    assert g.capabilities == {"attrs", "encode", "decode"} and g.kind == "swap"
    with pytest.raises(InputError, match="needs the input image"):
        g.decode(g.encode(x), c[0])
    with pytest.raises(InputError, match="expects 64x64"):
        g.generate(torch.zeros(1, 3, 32, 32), c[:, :1])
    with pytest.raises(InputError, match="needs each photo's identity"):
        g.unedited(None, 8)
    with pytest.raises(InputError, match="takes no reference"):
        g.generate(x, Condition(reference=x, role="target"))


def test_trainer_two_steps_on_lfw_load_back(tmp_path):
    from pdbench.train.aeswap import AESwapRecipe, AESwapTrainer

    root = require_asset("lfw-gray-250") / "images"
    r = AESwapRecipe(batch_size=2, iters=2, dim=8, latent=16, lr=1e-3)
    t = AESwapTrainer(str(root), None, str(tmp_path / "run"), r)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    t.train(progress=False)
    prog = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert prog["step"] == 2 and prog["train_photos"] == [498, 204] and prog["product"] == "AE.safetensors"
    assert "George_W_Bush_0530.jpg" in prog["held_out"]["George_W_Bush"]
    assert any(not torch.equal(before[k], v) for k, v in t.net.state_dict().items())
    g = get_generator("aeswap", checkpoint=str(tmp_path / "run" / "AE.safetensors"))
    assert g.weights.endswith("AE.safetensors") and torch.equal(g.net.encoder.fc1.weight, t.net.encoder.fc1.weight)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(AssetCorruptError, match="not an aeswap state dict"):
        get_generator("aeswap", checkpoint=str(tmp_path / "other.pt"))
    bad = AESwapNet(8, 16).state_dict()
    bad.pop("decoders.1.out.bias")
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(AssetCorruptError, match="1 missing \\(decoders.1.out.bias\\)"):
        get_generator("aeswap", checkpoint=str(tmp_path / "bad.pt"))


def _run_cfg(out, gen):
    from pdbench.bench import BenchConfig

    root = require_asset("lfw-gray-250") / "images"
    return BenchConfig.from_dict({
        "name": "aeswap-pipeline",
        # the last 1,000 LFW photos (names S–Z): strangers to both decoders, never trained on
        "dataset": {"path": str(root), "holdout": 1000, "split": "test", "n": 2, "seed": 0},
        "generators": [gen], "defenses": ["none", {"name": "pgd", "steps": 3}], "settings": ["none"],
        "metrics": ["mse", "linf_adv"], "batch_size": 2, "out": str(out)})


def test_the_swapper_runs_through_the_pipeline(tmp_path):
    """`pdbench run` with aeswap: each photo is the target, swapped to both identities; the run says so."""
    from pdbench.bench import run

    run(_run_cfg(tmp_path / "r", "aeswap"), progress=False)
    meta = json.loads((tmp_path / "r" / "results.json").read_text())
    gi = meta["generators"]["aeswap"]
    assert gi["kind"] == "swap" and gi["protected_role"] == "target"
    assert gi["conditions"] == ["to_George_W_Bush", "to_Colin_Powell"]
    mse = {e["defense"].split("(")[0]: e["mse"] for e in meta["summary"]}
    assert mse["none"] == 0.0 and mse["pgd"] > 0.001
    assert "the protected photo is the swap's **target**" in (tmp_path / "r" / "summary.md").read_text()


def test_shipped_weights_load_strictly_and_are_flagged():
    from pdbench.assets import ASSETS, load_state_dict, resolve

    g = get_generator("aeswap")
    state = load_state_dict(resolve("aeswap-lfw-64-pdbench"), asset=ASSETS.get("aeswap-lfw-64-pdbench"))
    ref = AESwapNet(24, 256).state_dict()
    assert set(state) == set(ref) and all(state[k].shape == ref[k].shape and state[k].dtype == torch.float16 for k in ref)
    assert g.weights == "aeswap-lfw-64-pdbench" and g.preprocessing.crop == CROP and g.preprocessing.size == 64
    assert g.experimental and "model-cards/aeswap" in g.experimental  # not a real swapper by the 80 % rule


def test_shipped_decoders_carry_their_identity_on_held_out_photos(held):
    """8 held-out photos: the other identity's decoder makes a face closer to that identity (a held-out photo
    of it) than to the photo, the photo's own decoder does not; pasted, the swap keeps the background but is
    not closer to the source often enough (the model card's verdict)."""
    from pdbench.metrics.swap import summarise, swap_identity, swap_keep

    g = get_generator("aeswap")
    x, who = held
    source = torch.cat([x[4:], x[:4]])  # photo i of the other identity
    with torch.inference_mode():
        swapped = g.decoded(x, _onehot(1 - who)).clamp(-1, 1)
        rebuilt = g.decoded(x, _onehot(who)).clamp(-1, 1)
        pasted = g.generate(x, g.swap_condition(_onehot(who), 8))[0]
    assert float((rebuilt - x).abs().mean()) < 0.16  # measured 0.132
    memo: dict = {}
    judge = ("mobilefacenet",)
    s = summarise(swap_identity(swapped, source, x, judge, memo))["identity"]["mobilefacenet"]
    r = summarise(swap_identity(rebuilt, source, x, judge, memo))["identity"]["mobilefacenet"]
    print("decoded swap", s, "reconstruction", r)
    assert s["closer_to_source"] >= 0.75 and r["closer_to_source"] <= 0.25  # measured 0.875 and 0.125
    assert (s["cos_to_source"] - s["cos_to_target"]) > (r["cos_to_source"] - r["cos_to_target"]) + 0.1  # 0.08 vs -0.13
    p = summarise(swap_identity(pasted, source, x, judge, memo), swap_keep(pasted, x, memo))
    assert p["keep"]["background_l1"] < 0.02  # measured 0.007: the photo is kept outside the face
    assert p["identity"]["mobilefacenet"]["closer_to_source"] < 0.8  # measured 0.375: not real (model card)
