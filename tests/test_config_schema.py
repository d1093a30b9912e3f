"""Every level of a benchmark config is validated before any work, each problem in one line."""

import copy
import math

import pytest
import torch

from pdbench.bench import BenchConfig, load_config
from pdbench.errors import InputError, UnknownNameError
from pdbench.tensors import check_images, resolve_device

BASE = {"dataset": {"path": "/tmp", "n": 2}, "generators": ["stargan"], "defenses": ["none", {"name": "pgd", "steps": 2}],
        "settings": ["none"], "metrics": ["mse"]}


def _with(path: tuple, value):
    d = copy.deepcopy(BASE)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize("path, value, msg", [
    (("dataset", "holdot"), 1000, "unknown key 'holdot' in dataset; .* Did you mean 'holdout'"),
    (("bacth_size",), 4, "unknown key 'bacth_size' in the config; .* Did you mean 'batch_size'"),
    (("defenses",), [{"name": "pgd", "stepz": 3}], "defense 'pgd' takes no parameter 'stepz' .* Did you mean 'steps'"),
    (("defenses",), [{"name": "pgd", "steps": 2.5}], "parameter 'steps' must be an integer"),
    (("defenses",), [{"name": "pgd", "eps": "0.05"}], "parameter 'eps' must be a number"),
    (("defenses",), [{"name": "pgd", "eps": 3.0}], r"eps must be in \(0, 2\]"),
    (("defenses",), [{"name": "pgd", "alpha": math.nan}], "alpha is nan; use a finite number"),
    (("generators",), [{"name": "stargan", "checkpont": "x.ckpt"}], "takes no parameter 'checkpont'.* Did you mean 'checkpoint'"),
    (("generators",), [{"name": "stargan", "checkpoint": "/no/such.ckpt"}], "checkpoint /no/such.ckpt does not exist"),
    (("metrics",), [{"name": "detector_f1", "detectr": "yunet"}], "metric 'detector_f1' takes no parameter 'detectr'"),
    (("settings",), [{"name": "blur", "sigma": 0}], r"setting 'blur': sigma must be in \(0, 50\], got 0"),
    (("settings",), ["blur:sigma=0"], r"sigma must be in \(0, 50\]"),
    (("settings",), [{"name": "noise", "std": -0.1}], r"std must be in \[0, 2\]"),
    (("settings",), [{"name": "resize", "factor": 0}], r"factor must be in \(0, 1\]"),
    (("settings",), [{"name": "jpeg", "quality": 75.5}], "'quality' must be an integer"),
    (("settings",), [{"name": "jpeg", "quality": math.inf}], "quality is inf"),
    (("settings",), ["jpeg:quality=nan"], "quality is nan"),
    (("settings",), ["none:level=2"], "setting 'none' takes no parameter 'level'"),
    (("defenses",), ["none", "none"], "lists 'none' twice"),
    (("defenses",), [{"name": "pgd", "label": " p "}], "label must be a non-empty name"),
    (("defenses",), [{"name": "pgd", "label": 3}], "label must be a non-empty name"),
    (("defenses",), ["none", {"name": "pgd", "steps": 2, "label": "none"}], "lists 'none' twice"),
    (("dataset",), {"path": "/tmp", "asset": "celeba-10k-89px"}, "exactly one of 'path'"),
    (("dataset",), {"asset": "celeba-10k"}, "Did you mean 'celeba-10k-89px'"),
    (("dataset", "n"), 0, "dataset.n must be >= 1"),
    (("dataset", "split"), "tset", "dataset.split must be 'test' or 'train'"),
    (("batch_size",), "16", "batch_size must be an integer"),
    (("device",), "foo", "device 'foo' is not a device"),
    (("metrics",), [], "metrics is empty"),
    (("defenses",), "pgd", "defenses must be a list"),
])
def test_bad_config_is_one_line(path, value, msg):
    with pytest.raises(InputError, match=msg) as e:
        BenchConfig.from_dict(_with(path, value))
    assert "\n" not in str(e.value)


def test_unknown_method_names_suggest_the_closest():
    for key, bad, good in (("defenses", "pgx", "pgd"), ("generators", "stargn", "stargan"), ("metrics", "lpipz", "lpips"),
                           ("settings", "jpg", "jpeg")):
        with pytest.raises(UnknownNameError, match=f"Did you mean '{good}'"):
            BenchConfig.from_dict(_with((key,), [bad]))


def test_good_config_passes_and_keys_its_content():
    cfg = BenchConfig.from_dict(copy.deepcopy(BASE))
    assert cfg.content_key() == BenchConfig.from_dict(_with(("out",), "elsewhere")).content_key()
    assert cfg.content_key() != BenchConfig.from_dict(_with(("defenses",), ["none"])).content_key()


def test_label_names_an_entry_in_results_and_is_not_a_parameter():
    from pdbench.registry import spec_label, spec_params

    d = _with(("defenses",), ["none", {"name": "pgd", "steps": 2, "alpha": 0.02, "label": "pgd-2"}])
    cfg = BenchConfig.from_dict(d)  # validate() passes: the label is not checked against PGD's parameters
    spec = cfg.defenses[1]
    assert spec_label(spec) == "pgd-2" and spec_params(spec) == {"steps": 2, "alpha": 0.02}
    assert spec_label({"name": "pgd", "steps": 2}) == "pgd(steps=2)"
    assert cfg.content_key() != BenchConfig.from_dict(_with(("defenses",), ["none", {"name": "pgd", "steps": 2,
                                                                            "alpha": 0.02}])).content_key()


def test_yaml_and_toml_syntax_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: {path: /tmp\ngenerators: [stargan]\n")
    with pytest.raises(InputError, match=r"not valid YAML at line \d+") as e:
        load_config(bad)
    assert "\n" not in str(e.value)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("name = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(bad_toml)


def test_images_nonfinite_wrong_dtype_and_empty_are_refused():
    x = torch.zeros(2, 3, 4, 4)
    check_images(x)
    y = x.clone()
    y[1, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="1 image"):
        check_images(y)
    with pytest.raises(InputError, match="NaN or Inf"):
        check_images(torch.full((1, 3, 4, 4), float("inf")))
    for dt in (torch.float64, torch.float16, torch.bfloat16):
        with pytest.raises(InputError, match="convert explicitly with x.float"):
            check_images(x.to(dt))
    with pytest.raises(InputError, match="batch is empty"):
        check_images(torch.zeros(0, 3, 4, 4))
    with pytest.raises(InputError, match="not a device"):
        resolve_device("foo")
