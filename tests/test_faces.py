"""Face detectors, dlib landmarks and the face metrics (L2-face, ID-Guard success rule, detector F1)."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_asset
from pdbench.errors import AssetMissingError
from pdbench.metrics import MetricInputs, get_metric
from pdbench.metrics.faces import f1_against
from pdbench.tensors import from_uint8


@pytest.fixture(scope="module")
def retinaface():
    require_asset("retinaface-mobilenet0.25")
    from pdbench.faces.detectors import get_detector

    return get_detector("retinaface")


def _photo(name: str, width: int = 640) -> torch.Tensor:
    img = Image.open(require_asset("deepface-unit") / name).convert("RGB")
    img = img.resize((width, round(img.size[1] * width / img.size[0])), Image.BILINEAR)
    return from_uint8(np.asarray(img)[None])


def test_retinaface_agrees_with_dlib_landmarks(retinaface):
    """Eyes found by RetinaFace (official weights) sit where dlib's 68-point model puts them."""
    from pdbench.faces.landmarks import landmarks68

    for name in ("img1.jpg", "img10.jpg", "img12.jpg"):
        x = _photo(name)
        dets = retinaface.detect(x)[0]
        assert dets and dets[0].score > 0.95, name
        best = dets[0]
        pts, found = landmarks68(x)
        assert found[0], name
        eyes = np.stack([pts[0, 36:42].mean(0), pts[0, 42:48].mean(0)])
        iod = np.linalg.norm(eyes[1] - eyes[0])
        err = np.linalg.norm(best.landmarks[:2] - eyes, axis=1).max()
        assert err < 0.25 * iod, (name, err, iod)  # within a quarter of the inter-ocular distance
        cx, cy = pts[0, 27:36].mean(0)  # the nose lies inside the detected box
        assert best.box[0] < cx < best.box[2] and best.box[1] < cy < best.box[3]


def test_retinaface_strict_load_and_clear_errors(tmp_path):
    from pdbench.faces.detectors.retinaface import RetinaFace, RetinaFaceNet

    torch.save({"module." + k: v for k, v in RetinaFaceNet().state_dict().items()}, tmp_path / "r.pth")
    RetinaFace.load(checkpoint=str(tmp_path / "r.pth"))  # DataParallel 'module.' prefix accepted
    sd = RetinaFaceNet().state_dict()
    sd.pop("ClassHead.0.conv1x1.bias")
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        RetinaFace.load(checkpoint=str(tmp_path / "bad.pth"))
    with pytest.raises(AssetMissingError, match="does not exist"):
        RetinaFace.load(checkpoint=str(tmp_path / "none.pth"))


def test_f1_matching():
    from pdbench.faces.detectors.base import Detection

    t = [Detection(np.array([10, 10, 50, 50.0]), 0.9)]
    assert f1_against(t, [Detection(np.array([11, 11, 51, 51.0]), 0.9)]) == 1.0
    assert f1_against(t, [Detection(np.array([20, 20, 60, 60.0]), 0.9)]) == 0.0  # IoU 0.39 < 0.7
    two = [Detection(np.array([11, 10, 50, 50.0]), 0.8), Detection(np.array([10, 10, 50, 52.0]), 0.9)]
    assert f1_against(t, two) == pytest.approx(2 / 3)  # one true positive, one duplicate false positive
    assert f1_against(t, []) == 0.0 and np.isnan(f1_against([], two))


def test_detector_f1_falls_under_a_detector_attack(retinaface, celeba_test_batch):
    """A PGD attack on RetinaFace's face scores (ε 0.05) lowers detector F1; a random ±ε sign pattern does not."""
    import torch.nn.functional as F

    x = celeba_test_batch[0][:8]
    x = F.interpolate(x, size=128, mode="bilinear", align_corners=False)
    x_adv = x.clone()
    for _ in range(10):
        x_adv.requires_grad_(True)
        loss = retinaface.face_scores(x_adv).topk(20, dim=1).values.sum()
        (g,) = torch.autograd.grad(loss, x_adv)
        x_adv = (x + (x_adv.detach() - 0.01 * g.sign() - x).clamp(-0.05, 0.05)).clamp(-1, 1)
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6
    torch.manual_seed(0)
    x_rand = (x + 0.05 * torch.randn_like(x).sign()).clamp(-1, 1)
    f1 = get_metric("detector_f1")
    out = torch.zeros(1, 8, 3, 128, 128)
    clean = f1(MetricInputs(x, x, out, out))
    defined = ~torch.isnan(clean)
    assert defined.sum() >= 5 and (clean[defined] == 1).all()
    attacked = f1(MetricInputs(x, x_adv, out, out))[defined].mean()
    rand = f1(MetricInputs(x, x_rand, out, out))[defined].mean()
    assert attacked < 0.3 and rand > 0.6, (float(attacked), float(rand))


def test_face_mask_and_l2_face(celeba_test_batch):
    from pdbench.faces.landmarks import face_mask

    x = celeba_test_batch[0][:6]
    m = face_mask(x)
    frac = m.mean((1, 2, 3))
    assert ((frac > 0.04) & (frac < 0.3)).all(), frac  # eyebrows to mouth: a tenth of a 64 px crop
    ys, xs = torch.nonzero(m[:, 0].sum(0) > 0, as_tuple=True)
    h = x.shape[-1]
    assert 0.3 * h < xs.float().mean() < 0.7 * h and 0.35 * h < ys.float().mean() < 0.8 * h
    clean = x[None].clone()
    outside = clean + 0.5 * (1 - m)[None]  # change only outside the facial mask
    inside = clean + 0.5 * m[None]
    l2f, mse = get_metric("l2_face"), get_metric("mse")
    a = MetricInputs(x, x, clean, outside.clamp(-1, 1))
    assert l2f(a).abs().max() < 1e-6 and mse(a).min() > 0.05  # full-image MSE sees it, L2-face does not
    b = MetricInputs(x, x, clean, inside)
    expected = (((inside.clamp(-1, 1) - clean) ** 2).mean(2, keepdim=True) * m).sum((2, 3, 4)) / m.sum((1, 2, 3))
    assert torch.allclose(l2f(b), expected.mean(0), atol=1e-6)


def test_dsr_idguard_needs_both_conditions(celeba_test_batch):
    x = celeba_test_batch[0][:4]
    same = MetricInputs(x, x, x[None], x[None])
    dsr = get_metric("dsr_idguard")
    assert (dsr(same) == 0).all()  # L2-face 0 and ID sim 1
    dark = MetricInputs(x, x, x[None], -torch.ones_like(x)[None])  # face blackened: L2-face large
    idsim = get_metric("id_sim")(dark)
    expect = (idsim < 0.4).float()
    assert torch.equal(dsr(dark), expect)  # success only where the identity is also gone


def _get_detector(name: str):
    """The detector, or skip (fail under PDBENCH_REQUIRE_ASSETS=1) where its weights are absent."""
    import os

    from pdbench.faces.detectors import get_detector

    try:
        return get_detector(name)
    except AssetMissingError as e:
        if os.environ.get("PDBENCH_REQUIRE_ASSETS") == "1":
            pytest.fail(f"{e}; PDBENCH_REQUIRE_ASSETS=1 makes this a failure")
        pytest.skip(str(e))


@pytest.mark.parametrize("name,asset", [("yunet", "yunet-n-onnx-dynamic"), ("scrfd", "scrfd-2.5g"),
                                        ("dlib_hog", None), ("dlib_mmod", None), ("mtcnn", None)])
def test_detectors_agree_with_retinaface_and_dlib(retinaface, name, asset):
    """Independent detectors find the same face as RetinaFace, and (non-dlib ones) put the eyes where
    dlib's 68-point model does (dlib's own detectors take their landmarks from that model)."""
    from pdbench.faces.detectors.base import box_iou
    from pdbench.faces.landmarks import landmarks68

    if asset:
        require_asset(asset)
    det = _get_detector(name)
    ious, eye_err = [], []
    for photo in ("img12.jpg", "img13.jpg", "img14.jpg", "img16.jpg", "img30.jpg", "img33.jpg"):
        x = _photo(photo)
        y, r = det.detect(x)[0], retinaface.detect(x)[0]
        assert y, (name, photo)
        ious.append(box_iou(y[0].box, r[0].box)[0, 0])
        pts, _ = landmarks68(x)
        eyes = np.stack([pts[0, 36:42].mean(0), pts[0, 42:48].mean(0)])
        eye_err.append(np.linalg.norm(y[0].landmarks[:2] - eyes, axis=1).max() / np.linalg.norm(eyes[1] - eyes[0]))
    assert np.median(ious) > 0.5, (name, ious)
    if not name.startswith("dlib"):
        assert max(eye_err) < 0.25, (name, eye_err)


def test_mtcnn_scores_are_differentiable_and_attackable(celeba_test_batch):
    """MTCNN's O-Net verdict carries useful gradients: ten signed steps (ε 0.05) on it turn most clean
    faces' crops into rejections (negative face margin), where a random ±ε pattern changes nothing."""
    mtcnn = _get_detector("mtcnn")
    x = celeba_test_batch[0][:8]
    clean = mtcnn.detect(x)
    assert sum(bool(d) for d in clean) >= 7
    assert mtcnn.face_scores(x).shape[0] == 8
    x_adv = x.clone()
    for _ in range(10):
        x_adv.requires_grad_(True)
        (g,) = torch.autograd.grad(mtcnn.box_scores(x_adv, clean).sum(), x_adv)
        x_adv = (x + (x_adv.detach() - 0.01 * g.sign() - x).clamp(-0.05, 0.05)).clamp(-1, 1)
    torch.manual_seed(0)
    x_rand = (x + 0.05 * torch.randn_like(x).sign()).clamp(-1, 1)
    with torch.no_grad():
        before, after, rand = (mtcnn.box_scores(v, clean) for v in (x, x_adv, x_rand))
    assert (before > 0).all() and (rand > 0).all()
    assert int((after < 0).sum()) >= len(after) // 2, after
