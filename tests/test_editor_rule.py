"""The proposed "is this editor real?" rule (pdbench.train.evaluate.real_editor) at its threshold edges, and how
attribute_success reads what each editor's conditions ask for (edit_targets), on synthetic inputs."""

import pytest
import torch

from pdbench.errors import InputError
from pdbench.train.evaluate import RULE, edit_targets, real_editor, wilson_interval


def edit(success=0.9, baseline=0.1, judge=0.9, strength=0.05, attribute="Male", faces=200):
    return {"attribute": attribute, "faces": faces, "success": success, "baseline": baseline,
            "judge_balanced_accuracy": judge, "strength": strength}


def test_a_clear_editor_is_real():
    ok, reasons = real_editor({"edits": {"flip_Male": edit(), "to_Blond_Hair": edit(attribute="Blond_Hair")}})
    assert ok and reasons == []


@pytest.mark.parametrize("field,at,below", [
    ("success", 0.70, 0.69),  # read as its target on at least 70 % of the edited faces
    ("strength", 0.02, 0.0199),  # changes its image by at least 0.02 where it acts
])
def test_thresholds_are_inclusive(field, at, below):
    assert real_editor({"edits": {"e": edit(**{field: at}, baseline=0.0)}})[0]
    ok, reasons = real_editor({"edits": {"e": edit(**{field: below}, baseline=0.0)}})
    assert not ok and len(reasons) == 1 and reasons[0].startswith("e: "), reasons


def test_margin_over_the_unedited_baseline():
    assert real_editor({"edits": {"e": edit(success=0.80, baseline=0.50)}})[0]  # 30 points: passes
    assert real_editor({"edits": {"e": edit(success=0.70, baseline=0.40)}})[0]  # (0.7 - 0.4 < 0.3 in floats)
    ok, reasons = real_editor({"edits": {"e": edit(success=0.80, baseline=0.51)}})  # 29 points
    assert not ok and "above its unedited baseline" in reasons[0], reasons


def test_an_edit_the_judge_cannot_see_is_not_judged():
    """Below the judge's 0.80 balanced accuracy an edit's reading does not count either way; its strength still does."""
    rep = {"edits": {"flip_Male": edit(), "flip_Bald": edit(success=0.0, judge=0.79, attribute="Bald")}}
    ok, reasons = real_editor(rep)
    assert ok and len(reasons) == 1 and "not judged" in reasons[0], reasons
    rep["edits"]["flip_Bald"]["judge_balanced_accuracy"] = 0.80  # at the edge it is judged, and fails
    assert not real_editor(rep)[0]
    rep["edits"]["flip_Bald"].update(judge_balanced_accuracy=0.5, strength=0.01)  # unjudged but does nothing
    assert not real_editor(rep)[0]


def test_no_judged_edit_is_not_real_and_thresholds_are_checked():
    ok, reasons = real_editor({"edits": {"e": edit(judge=None)}})
    assert not ok and reasons[-1] == "no edit could be judged"
    assert real_editor({"edits": {"e": edit(success=0.6, baseline=0.0)}}, min_success=0.6)[0]
    with pytest.raises(InputError, match="unknown threshold"):
        real_editor({"edits": {"e": edit()}}, min_sucess=0.6)
    with pytest.raises(InputError, match="no edits"):
        real_editor({})
    assert set(RULE) == {"min_judge_balanced_accuracy", "min_success", "min_margin", "min_strength", "min_faces"}


def test_too_few_faces_is_no_verdict():
    """A rate on 16 faces is too uncertain to pass an editor (StarGAN's gender flip read 75 % on 16 faces, 59 % on
    200): below min_faces an edit is not judged and the editor is not shown real."""
    assert real_editor({"edits": {"e": edit(faces=100)}})[0]
    ok, reasons = real_editor({"edits": {"e": edit(faces=99)}})
    assert not ok and "99 changed faces" in reasons[0], reasons
    assert real_editor({"edits": {"e": edit(faces=16)}}, min_faces=16)[0]


def test_wilson_interval_against_known_values():
    lo, hi = wilson_interval(110, 139)  # FPGAN's black hair: 79.1 % of 139 faces
    assert lo == pytest.approx(0.7164, abs=2e-4) and hi == pytest.approx(0.8506, abs=2e-4)
    lo, hi = wilson_interval(12, 16)  # 75 % of 16 faces: anywhere from about half to nine in ten
    assert lo == pytest.approx(0.5050, abs=2e-4) and hi == pytest.approx(0.8982, abs=2e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


class _G:
    name = "g"
    attributes = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male")


def test_edit_targets_read_every_encoding():
    labels = torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 0]])
    # StarGAN family: target labels (to blond: black/brown off, blond on)
    changed, target = edit_targets(_G, labels, torch.tensor([[0.0, 1, 0, 1], [0, 1, 0, 0]]), labels)
    assert changed.tolist() == [[True, True, False, False], [False, True, True, False]]
    assert target[:, :3].tolist() == [[0, 1, 0], [0, 1, 0]]
    # AttGAN: ±0.5 for the attributes kept, ±1 for the flipped one (Male flipped)
    scaled = labels * 1.0 - 0.5
    flipped = scaled.clone()
    flipped[:, 3] = torch.tensor([-1.0, 1.0])
    changed, target = edit_targets(_G, labels, flipped, scaled)
    assert changed.tolist() == [[False, False, False, True]] * 2 and target[:, 3].tolist() == [0, 1]
    # RelGAN relative vectors / HiSD tags against the zero vector; a tag the face already has asks for nothing
    zero = torch.zeros_like(labels)
    changed, target = edit_targets(_G, labels, torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0]]), zero)
    assert changed.tolist() == [[False] * 4, [True, False, False, False]]
    with pytest.raises(InputError, match="attribute conditions"):
        edit_targets(_G, labels, torch.zeros(2, 3), zero)
