"""CMUA-Watermark: one universal δ trained on 128 training faces against pdbench's StarGAN + AttGAN
disrupts held-out faces on both; δ files round-trip with their fingerprint and bad files fail in one line."""

import pytest
import torch

from pdbench.defenses import get_defense
from pdbench.defenses.cmua import load_delta, resolve_members, save_delta, train_on_faces
from pdbench.errors import AssetCorruptError, AssetMissingError, InputError
from pdbench.generators import Target

N_TRAIN = 128  # training faces: the official 128 (issue 11)
STEPS = 1  # PGD steps per edit (official 10): 128 faces x 1 step cost less than the former 16 faces x 10


@pytest.fixture(scope="module")
def trained(celeba_dir):
    members = resolve_members(["stargan", "attgan"])
    delta, meta = train_on_faces(members, n=N_TRAIN, steps=STEPS, batch_size=64)  # the official batch
    return members, delta, meta


@pytest.fixture(scope="module")
def heldout(celeba_dir):
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt")
    _, test = ds.split(1000)
    idx = ds.select(6, seed=4, pool=test)
    return ds, idx, ds.load(idx)


@torch.inference_mode()
def _mse(t, x, x_adv):
    return float((t.outputs(x_adv)[0] - t.outputs(x)[0]).pow(2).mean())


def test_universal_delta_disrupts_heldout_faces_on_both_models(trained, heldout, tmp_path):
    members, delta, meta = trained
    assert delta.shape == (3, 64, 64) and float(delta.abs().max()) <= 0.05 + 1e-7
    assert meta["n_train"] == N_TRAIN and meta["generators"] == ["stargan", "attgan"]
    path = tmp_path / "cmua.safetensors"
    fp = save_delta(path, delta, meta)
    d = get_defense("cmua", delta=str(path))
    ds, idx, x = heldout
    x_adv = d.protect(x, Target.of(members[0][0], None, len(x)))
    assert float((x_adv - x).abs().max()) <= 0.05
    assert torch.allclose(x_adv, (x + delta).clamp(-1, 1), atol=1e-6)  # the same δ on every image
    g = torch.Generator().manual_seed(0)
    noise = (x + 0.05 * torch.sign(torch.rand(3, 64, 64, generator=g) - 0.5)).clamp(-1, 1)  # universal random δ
    for G, _ in members:
        t = Target.of(G, ds.labels(G.attributes, idx), len(idx))
        ours, rand = _mse(t, x, x_adv), _mse(t, x, noise)
        assert ours > 1.5 * rand, (G.name, ours, rand)
    assert d.weights_hash() == fp and d.fingerprint() != get_defense("cmua").fingerprint()  # δ is in the key


def test_delta_file_fingerprint_and_errors(tmp_path):
    delta = torch.rand(3, 8, 8) * 0.1 - 0.05
    p = tmp_path / "d.safetensors"
    save_delta(p, delta, {"n_train": 3})
    back, meta = load_delta(p)
    assert torch.equal(back, delta) and meta == {"n_train": 3}
    a = get_defense("cmua", delta=str(p))
    save_delta(tmp_path / "e.safetensors", delta + 0.001, {})
    assert a.fingerprint() != get_defense("cmua", delta=str(tmp_path / "e.safetensors")).fingerprint()
    with pytest.raises(InputError, match="δ is 8x8 but the images are 16x16"):
        a.protect(torch.zeros(1, 3, 16, 16), Target([]))
    with pytest.raises(AssetMissingError, match="no δ file"):
        get_defense("cmua", delta=str(tmp_path / "missing.safetensors"))
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(AssetCorruptError, match="not a δ file"):
        get_defense("cmua", delta=str(tmp_path / "bad.safetensors"))
    assert (tmp_path / "bad.safetensors").read_bytes() == b"not a tensor file"  # never touched


def test_save_to_is_reused_by_a_later_process_and_a_file_trained_otherwise_is_refused(celeba_dir, tmp_path, monkeypatch):
    """A resumed run reads its δ back from save_to instead of training again; a δ file whose recorded
    training differs (here: the number of steps) is refused in one line and left untouched."""
    from pdbench.defenses import cmua

    members = resolve_members(["stargan"])
    d = get_defense("cmua", surrogates=["stargan"], train_n=4, steps=3, save_to=str(tmp_path / "d.safetensors"))
    delta = torch.full((3, 64, 64), 0.03)
    save_delta(d.save_to, delta, cmua.delta_meta(members, 4, None, "cmua", d.train_kwargs()))
    monkeypatch.setattr(cmua, "_TRAINED", {})  # a fresh process

    def no_training(*a, **k):
        raise AssertionError("trained again although save_to holds this δ")

    monkeypatch.setattr(cmua, "train_universal", no_training)
    x = torch.zeros(2, 3, 64, 64)
    assert torch.allclose(d.protect(x, Target.of(members[0][0], None, 2)), x + 0.03)
    before = (tmp_path / "d.safetensors").read_bytes()
    other = get_defense("cmua", surrogates=["stargan"], train_n=4, steps=5, save_to=d.save_to)
    with pytest.raises(InputError, match=r"holds a δ trained otherwise \(config differ\); delete it or choose another save_to"):
        other.protect(x, Target.of(members[0][0], None, 2))
    assert (tmp_path / "d.safetensors").read_bytes() == before
