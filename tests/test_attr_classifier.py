"""pdbench's independent attribute classifier (the judge of editors): what it reads on real held-out CelebA
faces it never saw, that its loader is strict, and that it sees StarGAN's hair edits."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from pdbench.errors import AssetCorruptError, InputError
from pdbench.train.classifier import ASSET, ATTRS, EDITOR_CROPS, accuracy_report, attr_classifier
from pdbench.train.evaluate import attribute_success


@pytest.fixture(scope="module")
def judge():
    return attr_classifier()


@pytest.fixture(scope="module")
def held_out_report(judge, celeba_dir):
    """The classifier on all 1,000 held-out faces (the folder's last 1,000: never loaded in training), at
    the centre-square crop of StarGAN, FPGAN, AttentionGAN, RelGAN and HiSD."""
    from pdbench.data import FaceFolder

    ds = FaceFolder(celeba_dir / "images", 64, attr_file=celeba_dir / "list_attr_celeba_first20k.txt",
                    check_files=False, crop=EDITOR_CROPS[0])
    _, test = ds.split(1000)
    return accuracy_report(judge, ds.load(test), ds.labels(ATTRS, test))


# balanced accuracies measured on the 1,000 held-out faces (model card), minus a margin of about 0.04
FLOORS = {"Bald": 0.91, "Bangs": 0.86, "Black_Hair": 0.80, "Blond_Hair": 0.86, "Eyeglasses": 0.85, "Male": 0.87,
          "Mustache": 0.78, "No_Beard": 0.79, "Pale_Skin": 0.80}  # measured 0.954 0.904 0.844 0.899 0.895 0.907 0.841 0.833 0.849


def test_held_out_accuracy(held_out_report):
    rep = held_out_report
    print(rep)
    a = rep["attributes"]
    for attr, floor in FLOORS.items():
        assert a[attr]["balanced_accuracy"] >= floor, (attr, a[attr])
    assert rep["n"] == 1000 and rep["mean_balanced_accuracy"] >= 0.80, rep  # 0.837
    assert rep["hair_argmax"]["accuracy"] >= 0.84, rep["hair_argmax"]  # 0.879 on 578 single-colour faces
    # read poorly (Brown_Hair 0.780, Bushy_Eyebrows 0.752, Mouth_Slightly_Open 0.705, Young 0.718: below the
    # rule's 0.80, so edits of these are not judged), but above chance
    for attr in ("Brown_Hair", "Bushy_Eyebrows", "Mouth_Slightly_Open", "Young"):
        assert a[attr]["balanced_accuracy"] > 0.65, (attr, a[attr])


def test_loader_is_strict(tmp_path, judge):
    from pdbench.assets import resolve

    state = load_file(str(resolve(ASSET)))
    short = dict(state)
    short.pop("features.0.1.running_mean")
    save_file(short, str(tmp_path / "short.safetensors"))
    with pytest.raises(AssetCorruptError, match="1 missing"):
        attr_classifier(str(tmp_path / "short.safetensors"))
    extra = {**state, "head.extra": torch.zeros(1)}
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(AssetCorruptError, match="unexpected"):
        attr_classifier(str(tmp_path / "extra.safetensors"))
    other = {"main.0.weight": torch.zeros(8, 3, 3, 3)}  # a generator's file
    save_file(other, str(tmp_path / "other.safetensors"))
    with pytest.raises(AssetCorruptError, match="not an attribute classifier"):
        attr_classifier(str(tmp_path / "other.safetensors"))
    five = {**state, "head.weight": state["head.weight"][:5], "head.bias": state["head.bias"][:5]}
    save_file(five, str(tmp_path / "five.safetensors"))
    with pytest.raises(AssetCorruptError, match="5 outputs"):
        attr_classifier(str(tmp_path / "five.safetensors"))
    with pytest.raises(InputError, match="64 px"):
        judge(torch.zeros(1, 3, 128, 128))


def test_it_sees_stargans_hair_edits(stargan, celeba_test_batch, judge, held_out_report):
    """On 32 held-out faces, StarGAN's hair-colour edits are read as their colour far more often than its
    unedited outputs are (the baseline)."""
    x, labels, _ = celeba_test_batch
    rep = attribute_success(stargan, x, labels, judge, held_out_report)
    print(rep)
    for hair in ("to_Black_Hair", "to_Blond_Hair", "to_Brown_Hair"):
        e = rep["edits"][hair]
        assert e["faces"] >= 10 and e["attribute"] == hair[3:], e
        # measured: black 0.95 vs 0.09 (22 faces), blond 0.93 vs 0.18 (28), brown 1.00 vs 0.13 (23)
        assert e["success"] >= 0.80 and e["success"] >= e["baseline"] + 0.5, (hair, e)
        assert e["change"]["hair"] > e["change"]["face"], (hair, e)
    male = rep["edits"]["flip_Male"]
    assert male["faces"] == 32 and sum(d["faces"] for d in male["by_direction"].values()) == 32, male  # every face


def test_the_recipe_trains_on_training_faces_only_and_resumes(celeba_dir, tmp_path):
    """`pdbench train classifier` on a 40-face folder: the last `holdout` faces are never loaded, the last `val`
    training faces validate, the product is the best validated network, and a run resumes (state.pt loads
    with weights_only: the learning rate is stored as a plain float)."""
    from pdbench.train.classifier import ClassifierRecipe, ClassifierTrainer

    src = sorted((celeba_dir / "images").iterdir())[:40]
    (tmp_path / "img").mkdir()
    for p in src:
        (tmp_path / "img" / p.name).symlink_to(p)
    attrs = celeba_dir / "list_attr_celeba_first20k.txt"
    recipe = ClassifierRecipe(batch_size=8, iters=3, holdout=10, val=10, eval_every=2)
    t = ClassifierTrainer(str(tmp_path / "img"), str(attrs), str(tmp_path / "run"), recipe)
    assert t.stores.shape[:2] == (len(EDITOR_CROPS), 20) and t.val_x.shape[0] == 10 * len(EDITOR_CROPS)
    t.train(progress=False)
    assert t.step == 3 and t.best_step in (2, 3)
    t2 = ClassifierTrainer(str(tmp_path / "img"), str(attrs), str(tmp_path / "run"), ClassifierRecipe(
        batch_size=8, iters=4, holdout=10, val=10, eval_every=2))
    assert t2.resume() and t2.step == 3 and t2.best_score == t.best_score
    c = attr_classifier(str(tmp_path / "run" / "C.safetensors"))
    assert c(torch.zeros(2, 3, 64, 64)).shape == (2, len(ATTRS))
