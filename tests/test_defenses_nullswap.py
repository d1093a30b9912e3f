"""NullSwap with real weights and real held-out faces: the ONNX MobileFaceNet's torch conversion matches
OpenCV's ONNX runtime, the shipped network loads strictly with its checksum, respects ε, and lowers the
identity similarity photo vs cloaked photo far below random noise of the same ε; `pdbench train nullswap`
trains black-box (no generator), checkpoints and resumes."""

import json
import shutil

import numpy as np
import pytest
import torch

from pdbench.assets import ASSETS, resolve, sha256_file
from pdbench.cli import main
from pdbench.defenses import DEFENSES, get_defense
from pdbench.defenses.nullswap import ASSET, NullSwapNet, load_nullswap, nullswap_from_state
from pdbench.errors import AssetCorruptError, UnknownNameError
from pdbench.faces.identity import get_embedder
from pdbench.generators import Target

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def faces(celeba_dir):
    """12 held-out faces (9001-10000: never seen in training) at 64 px."""
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64)
    _, test = ds.split(1000)
    return ds.load(ds.select(12, seed=3, pool=test))


def test_onnx_conversion_matches_opencv_on_real_faces(celeba_dir):
    cv2 = pytest.importorskip("cv2")
    from pdbench.faces.mobilefacenet_onnx import OnnxGraph, load_onnx_mobilefacenet

    net = load_onnx_mobilefacenet()
    ref = cv2.dnn.readNetFromONNX(str(resolve("mobilefacenet-onnx")))
    paths = sorted((celeba_dir / "images").iterdir())[-4:]
    blobs = np.stack([((cv2.resize(cv2.imread(str(p))[8:84, 6:82], (112, 112)).astype(np.float32) - 127.5) / 128)
                      .transpose(2, 0, 1) for p in paths])
    want = []
    for b in blobs:  # the graph's Reshape hard-codes batch 1 (its export), so the reference runs one at a time
        ref.setInput(b[None])
        want.append(ref.forward()[0])
    want = np.stack(want)
    with torch.inference_mode():
        got = net(torch.from_numpy(blobs)).numpy()  # batched: all four at once
    assert want.shape == got.shape == (4, 128)
    assert np.abs(want - got).max() < 1e-4 * np.abs(want).max(), np.abs(want - got).max()
    # different faces are told apart by the converted model: self-similarity 1, the others below it
    e = torch.nn.functional.normalize(torch.from_numpy(got), dim=1)
    sim = e @ e.T
    assert float(sim.diag().min()) > 0.999 and float((sim - 2 * torch.eye(4)).max()) < 0.9
    import onnx

    bad = onnx.load(str(resolve("mobilefacenet-onnx")))
    bad.graph.node[0].op_type = "Sigmoid"
    with pytest.raises(AssetCorruptError, match="Sigmoid is not supported"):
        OnnxGraph(bad)
    with pytest.raises(UnknownNameError, match="mobilefacenet-onnx"):
        get_embedder(model="arcface")


def test_shipped_weights_load_strictly_with_checksum():
    spec = ASSETS.get(ASSET)
    assert spec.builtin and sha256_file(spec.location()) == spec.sha256 and spec.location().stat().st_size == spec.size
    net = load_nullswap()
    assert isinstance(net, NullSwapNet) and not net.training and net.ch == spec.meta["ch"]
    info = DEFENSES.get("nullswap").info()
    assert info["access"] == "black-box" and info["norm"] == "linf" and info["eps"] == 0.05
    assert info["methodology"] == "model" and "ICCV 2025" in info["venue"]
    assert get_defense("nullswap").fingerprint() != get_defense("nullswap", network=NullSwapNet(net.ch)).fingerprint()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state.pop("final.2.bias")
    with pytest.raises(AssetCorruptError, match=r"1 missing \(final.2.bias\)"):
        nullswap_from_state(state, "x.safetensors")
    with pytest.raises(AssetCorruptError, match="not a NullSwap state dict"):
        nullswap_from_state({"main.0.weight": torch.zeros(1)}, "g.safetensors")


def test_eps_respected_and_identity_cloaked_far_below_random(stargan, faces):
    x = faces
    d = get_defense("nullswap")
    t = Target.of(stargan, None, x.shape[0])
    x_adv = d.protect(x, t)
    assert float((x_adv - x).abs().max()) <= 0.05 + 1e-7 and float(x_adv.min()) >= -1 and float(x_adv.max()) <= 1
    one = d.protect(x[:1], t.subset(slice(0, 1)))  # batched = one by one (eval-mode BatchNorm)
    assert torch.allclose(one, x_adv[:1], atol=1e-6)
    g = torch.Generator().manual_seed(0)
    x_rand = (x + 0.05 * torch.sign(torch.rand(x.shape, generator=g) - 0.5)).clamp(-1, 1)
    with torch.inference_mode():
        for model in ("mobilefacenet", "mobilefacenet-onnx"):
            e = get_embedder(None, model=model)
            ref = e(x)
            s_rand, s_ns = (e(x_rand) * ref).sum(1), (e(x_adv) * ref).sum(1)
            assert float(s_rand.mean()) > 0.85, (model, s_rand)  # random noise of this ε keeps the identity
            assert float(s_ns.mean()) < float(s_rand.mean()) - SIM_MARGIN[model], (model, s_ns, s_rand)
            assert float((s_ns < s_rand).float().mean()) == 1.0, (model, s_ns, s_rand)


SIM_MARGIN = {"mobilefacenet": 0.2, "mobilefacenet-onnx": 0.15}  # measured on these 12 faces: 0.27 and 0.23


def test_train_two_steps_resumes_black_box(celeba_dir, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((celeba_dir / "images").iterdir())[:8]:
        shutil.copy(p, imgs / p.name)
    out = tmp_path / "run"
    args = ["train", "nullswap", "--data", str(imgs), "--out", str(out), "--resolution", "64", "--dim", "8",
            "--holdout", "2", "--batch-size", "2", "--save-every", "1", "--sample-every", "2"]
    assert main(args + ["--iters", "2"]) == 0
    prog = json.loads((out / "progress.json").read_text())
    assert prog["step"] == 2 and prog["product"] == "PG.safetensors" and prog["recipe"]["ch"] == 8
    assert prog["extractors"] == ["mobilefacenet", "mobilefacenet-onnx"] and "target" not in prog
    first = torch.load(out / "state.pt", weights_only=True)
    assert main(["train", "nullswap", "--data", str(imgs), "--out", str(out), "--resume", "--iters", "3",
                 "--save-every", "1"]) == 0
    st = torch.load(out / "state.pt", weights_only=True)
    assert st["step"] == 3 and set(st) >= {"PG", "opt"}
    key = "final.2.weight"
    assert not torch.equal(st["PG"][key], first["PG"][key])  # the resumed step trained
    capsys.readouterr()
    assert main(["train", "nullswap", "--data", str(imgs), "--out", str(out), "--resume", "--dim", "16",
                 "--iters", "4"]) == 2
    assert "ch=8" in capsys.readouterr().err
    assert main(["export", str(out), "-o", str(tmp_path / "ns.safetensors")]) == 0
    net = load_nullswap(str(tmp_path / "ns.safetensors"))  # strict load of the fp16 export
    assert net.ch == 8 and torch.allclose(net.final[2].weight, st["PG"][key].half().float())


def test_identity_objective_runs_inside_pgd():
    """The identity objective's references are embedded under inference mode; PGD on it must still take
    gradients (it once failed with 'Inference tensors cannot be saved for backward') and move within ε."""
    import torch

    from pdbench.defenses import get_defense
    from pdbench.generators import Target, get_generator

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pgd = get_defense("composite", objectives=["identity"], steps=2,
                      optimiser={"name": "sign-pgd", "random_start": False})
    xa = pgd.protect(x, Target.of(get_generator("stargan"), None, 2))
    d = (xa - x).abs().max().item()
    assert 0.0 < d <= 0.05 + 1e-6
