"""AttGAN's inference speed path (BatchNorm folded into the convolutions, channels-last) computes the
same function as the checkpoint's network: the same outputs and input gradients on real faces and the
shipped weights, the same PGD perturbation, and leaves the weights, state_dict and fingerprint alone."""

import pytest
import torch

from pdbench.data import FaceFolder
from pdbench.defenses import get_defense
from pdbench.errors import InputError
from pdbench.generators import Target, get_generator
from pdbench.generators.attgan import fold_batchnorm
from pdbench.generators.base import fast_default


@pytest.fixture(scope="module")
def faces(celeba_dir):
    g = get_generator("attgan")
    ds = FaceFolder(celeba_dir / "images", g.resolution, attr_file=celeba_dir / "list_attr_celeba_first20k.txt",
                    crop=g.crop, check_files=False)
    _, test = ds.split(1000)  # held out from training
    idx = ds.select(2, seed=0, pool=test)
    return ds.load(idx), ds.labels(g.attributes, idx)


def _pair():
    fast, plain = get_generator("attgan"), get_generator("attgan")
    plain.fast = False
    return fast, plain


def test_the_switch(monkeypatch):
    g = get_generator("attgan")
    monkeypatch.delenv("PDBENCH_FAST", raising=False)
    assert fast_default() and g.fast_path
    monkeypatch.setenv("PDBENCH_FAST", "0")
    assert not g.fast_path
    g.fast = True  # the instance's switch wins over the environment
    assert g.fast_path
    monkeypatch.setenv("PDBENCH_FAST", "maybe")
    with pytest.raises(InputError, match="PDBENCH_FAST"):
        fast_default()


def test_fast_outputs_and_input_gradients_match_the_checkpoint_network(faces):
    x, labels = faces
    fast, plain = _pair()
    cs = fast.conditions(labels, x.shape[0])
    assert fast._runner() is not fast.net and plain._runner() is plain.net
    with torch.inference_mode():  # the copy is built here, and must still serve autograd below
        y_fast, y_plain = fast.generate_many(x, cs), plain.generate_many(x, cs)
    d = float((y_fast - y_plain).abs().max())
    assert d < 1e-4, d  # measured 2.0e-6 (outputs in [-1, 1])
    assert float((y_plain - x).abs().mean()) > 0.05  # a real edit, not a constant (measured 0.075)

    w = torch.randn(y_plain.shape, generator=torch.Generator().manual_seed(0))  # a fixed random readout

    def grad(G):
        xi = x.clone().requires_grad_(True)
        (G.generate_many(xi, cs) * w).sum().backward()
        return xi.grad

    g_fast, g_plain = grad(fast), grad(plain)
    rel = float((g_fast - g_plain).abs().max() / g_plain.abs().max())
    assert rel < 1e-3, rel  # measured 8.3e-7 of the largest entry (9.1e-6 of 10.9)
    cos = float(torch.nn.functional.cosine_similarity(g_fast.flatten(), g_plain.flatten(), dim=0))
    assert cos > 0.99999, cos
    assert float((g_fast.sign() != g_plain.sign()).float().mean()) < 1e-3  # measured 0: PGD steps the same way
    # the hooks that latent and feature defenses attack use the copy too, with the same values
    with torch.no_grad():
        for a, b in zip(fast.features(x).values(), plain.features(x).values()):
            assert a.is_contiguous() and float((a - b).abs().max()) < 1e-4
        # measured 7.6e-6
        assert torch.allclose(fast.decode(fast.net.encode(x), cs[0]), y_plain[0], atol=1e-4)


def test_weights_state_dict_and_fingerprint_are_the_checkpoints():
    fast, plain = _pair()
    before = {k: v.clone() for k, v in fast.state_dict().items()}
    fp = fast.fingerprint()
    fast.optimise_for_inference()
    assert fast.fingerprint() == fp == plain.fingerprint()
    after = fast.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not any("_fast" in k for k in after)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules()) == 7  # the net keeps its BatchNorms
    fast.net.load_state_dict(plain.net.state_dict(), strict=True)  # strict loading still works
    # a change of the weights rebuilds the copy: a zeroed last layer gives tanh(0) = 0 everywhere
    x = torch.zeros(1, 3, fast.resolution, fast.resolution)
    c = fast.conditions(None, 1)[0]
    with torch.no_grad():
        first = fast._runner()
        fast.net.dec_layers[-1].layers[0].weight.zero_()
        fast.net.dec_layers[-1].layers[0].bias.zero_()
        assert fast._runner() is not first
        assert float(fast.generate(x, c).abs().max()) == 0.0


def test_not_used_while_training_or_when_the_weights_need_gradients():
    g = get_generator("attgan")
    g.net.train()
    assert g._runner() is g.net
    with pytest.raises(InputError, match="eval mode"):
        fold_batchnorm(g.net)
    g.net.eval()
    g.net.requires_grad_(True)
    assert g._runner() is g.net  # an optimiser holds these weights, not the copy's
    with torch.no_grad():
        assert g._runner() is not g.net


def test_pgd_reaches_the_same_perturbation(faces):
    x, labels = faces
    fast, plain = _pair()
    pgd = get_defense("pgd", steps=2, seed=0)
    xa_fast = pgd.protect(x, Target.of(fast, labels, x.shape[0]))
    xa_plain = pgd.protect(x, Target.of(plain, labels, x.shape[0]))
    d = (xa_fast - xa_plain).abs()
    # a pixel can differ only where a near-zero gradient's sign flipped under the other summation order
    frac = float(d.gt(1e-6).float().mean())
    assert frac < 0.01, frac  # measured 0.0 of the 2 × 3 × 64 × 64 values
    assert float((xa_plain - x).abs().max()) <= 0.05 + 1e-6


def test_weights_loaded_under_inference_mode_still_give_input_gradients():
    with torch.inference_mode():  # the weights are inference tensors (no version counter)
        g = get_generator("attgan")
        x = torch.rand(1, 3, g.resolution, g.resolution) * 2 - 1
        c = g.conditions(None, 1)[4]
        y = g.generate(x, c)
    xi = x.clone().requires_grad_(True)
    out = g.generate(xi, c)
    out.pow(2).sum().backward()  # the copy holds normal tensors, so autograd runs through it
    assert float(xi.grad.abs().max()) > 0 and float((out.detach() - y).abs().max()) < 1e-5


def test_threads_option(capsys, tmp_path):
    from pdbench import cli

    before = torch.get_num_threads()
    try:
        assert cli.main(["run", str(tmp_path / "missing.yaml"), "--threads", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--threads must be a positive number" in err
        assert cli.build_parser().parse_args(["protect", "a.png", "-o", "b.png", "--threads", "1"]).threads == 1
        cli._set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
