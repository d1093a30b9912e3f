"""Named probe sets: one ``settings:`` entry that stands for a list of practical settings.

``settings: [pdb-code]`` runs the unprocessed baseline ``none`` plus the eight probes of PDB's
robustness code; the report then gives ROB for the set under its name. Every probe's results carry
the label ``<set>/<probe>`` (``pdb-code/jpeg70``), so results.csv says which set a row came from.

ROB sets (each reported as one ROB number):

* ``pdb-code`` — PDB's code (``robustness_evaluation.py``'s ``PREPROCESSING_TYPES``, parameters as
  ``attacks/batch_robustness_test.py`` parses the names): ``blur1``/``blur3`` = torchvision Gaussian
  blur with kernel 1/3 and σ = 1 (kernel 1 is the identity); ``jpeg70``/``jpeg90`` = JPEG quality 70/90
  through Pillow; ``noise001``/``noise003`` = Gaussian noise std 0.001/0.003 on [-1, 1];
  ``salt_pepper001``/``salt_pepper003`` = salt-and-pepper with probability 0.001/0.003.
  Mild by construction: most probes barely move the image.
* ``pdb-paper`` — the transformations the PDB paper's text names, with parameters pdbench chose
  (the paper gives none): JPEG quality 75; Gaussian blur σ = 1 px (pdbench's ``blur``, kernel
  radius 3σ); Gaussian noise std 0.04 on [-1, 1] (≈ 5 grey levels of 255, same order as ε = 0.05);
  downscale to half size and back (bilinear, antialiased).

Severity sweeps (reported as a curve of disruption against severity): ``sweep-jpeg`` (quality
100 → 50), ``sweep-blur`` (σ 0.5 → 3), ``sweep-noise`` (std 0.01 → 0.08 on [-1, 1]),
``sweep-scale`` (factor 0.75 → 0.25).

Differences from PDB that remain: PDB turns images to 8 bits by truncation before JPEG, pdbench
rounds to nearest (:func:`pdbench.tensors.to_uint8`); PDB draws its noise from one global seed,
pdbench per image (:mod:`.pixel_noise`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import InputError, UnknownNameError
from .base import Transform, parse_setting


@dataclass(frozen=True)
class ProbeSet:
    name: str
    kind: str  # "rob": one ROB number; "sweep": a curve over ``param``
    description: str
    probes: tuple  # ((probe name, setting spec, severity), ...) in report order
    param: str = ""  # what the severity measures (sweeps)
    source: str = ""

    def probe_names(self) -> list[str]:
        return [p[0] for p in self.probes]

    def severity(self, probe: str):
        return {p[0]: p[2] for p in self.probes}.get(probe)


PROBE_SETS: dict[str, ProbeSet] = {}


def register_probe_set(ps: ProbeSet) -> ProbeSet:
    if ps.name in PROBE_SETS and PROBE_SETS[ps.name] != ps:
        raise ValueError(f"probe set {ps.name!r} is registered twice")
    if ps.kind not in ("rob", "sweep"):
        raise ValueError(f"probe set {ps.name!r}: kind must be 'rob' or 'sweep', got {ps.kind!r}")
    PROBE_SETS[ps.name] = ps
    return ps


register_probe_set(ProbeSet(
    "pdb-code", "rob", "the eight probes of PDB's robustness code (mild)",
    (("blur1", {"name": "blur_kernel", "kernel": 1, "sigma": 1.0}, None),
     ("blur3", {"name": "blur_kernel", "kernel": 3, "sigma": 1.0}, None),
     ("jpeg70", {"name": "jpeg", "quality": 70}, None),
     ("jpeg90", {"name": "jpeg", "quality": 90}, None),
     ("noise001", {"name": "gaussian_noise", "std": 0.001}, None),
     ("noise003", {"name": "gaussian_noise", "std": 0.003}, None),
     ("salt_pepper001", {"name": "salt_pepper", "prob": 0.001}, None),
     ("salt_pepper003", {"name": "salt_pepper", "prob": 0.003}, None)),
    source="proactivedefensebenchmark: robustness_evaluation.py PREPROCESSING_TYPES, "
           "attacks/batch_robustness_test.py apply_preprocessing"))

register_probe_set(ProbeSet(
    "pdb-paper", "rob", "the PDB paper's JPEG 75, Gaussian blur, Gaussian noise, downscale-upscale",
    (("jpeg_q75", {"name": "jpeg", "quality": 75}, None),
     ("blur_s1.0", {"name": "blur", "sigma": 1.0}, None),
     ("noise_s0.04", {"name": "gaussian_noise", "std": 0.04}, None),
     ("resize_x0.5", {"name": "resize", "factor": 0.5}, None)),
    source="PDB paper, Robustness and Transferability (parameters chosen by pdbench)"))

register_probe_set(ProbeSet(
    "sweep-jpeg", "sweep", "JPEG quality 100 → 50",
    tuple((f"jpeg_q{q}", {"name": "jpeg", "quality": q}, q) for q in (100, 90, 80, 70, 60, 50)), param="quality"))
register_probe_set(ProbeSet(
    "sweep-blur", "sweep", "Gaussian blur σ 0.5 → 3 px",
    tuple((f"blur_s{s}", {"name": "blur", "sigma": s}, s) for s in (0.5, 1.0, 1.5, 2.0, 3.0)), param="sigma"))
register_probe_set(ProbeSet(
    "sweep-noise", "sweep", "Gaussian noise std 0.01 → 0.08 on [-1, 1]",
    tuple((f"noise_s{s}", {"name": "gaussian_noise", "std": s}, s) for s in (0.01, 0.02, 0.04, 0.08)), param="std"))
register_probe_set(ProbeSet(
    "sweep-scale", "sweep", "downscale-upscale factor 0.75 → 0.25",
    tuple((f"resize_x{f}", {"name": "resize", "factor": f}, f) for f in (0.75, 0.5, 0.375, 0.25)), param="factor"))


class Probe(Transform):
    """One probe of a named set: the set's transform, labelled ``<set>/<probe>`` in results."""

    def __init__(self, set_name: str, probe: str, inner: Transform, severity=None):
        super().__init__(**inner.params)
        self.name, self.set_name, self.probe, self.inner, self.severity = inner.name, set_name, probe, inner, severity
        self.differentiable = inner.differentiable

    def label(self) -> str:
        return f"{self.set_name}/{self.probe}"

    def __call__(self, x):
        return self.inner(x)


def split_label(label: str) -> tuple[ProbeSet, str] | None:
    """(set, probe name) for a ``<set>/<probe>`` setting label of a registered set, else None."""
    set_name, sep, probe = str(label).partition("/")
    ps = PROBE_SETS.get(set_name) if sep else None
    return (ps, probe) if ps is not None and probe in ps.probe_names() else None


def probes(name: str) -> list[Probe]:
    ps = PROBE_SETS[name]
    return [Probe(ps.name, p, parse_setting(spec), sev) for p, spec, sev in ps.probes]


def _set_name(spec) -> str | None:
    if isinstance(spec, str) and spec in PROBE_SETS:
        return spec
    if isinstance(spec, dict) and spec.get("name") in PROBE_SETS:
        if set(spec) != {"name"}:
            raise InputError(f"setting {spec!r}: probe set {spec['name']!r} takes no parameters; "
                             "list the settings themselves to change them")
        return spec["name"]
    return None


def _check_known(spec) -> None:
    from . import TRANSFORMS

    name = spec.partition(":")[0] if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
    if isinstance(name, str) and name not in TRANSFORMS:
        close = difflib.get_close_matches(name, list(TRANSFORMS.names()) + list(PROBE_SETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown setting {name!r}; transforms: {', '.join(TRANSFORMS.names())}; "
                               f"probe sets: {', '.join(PROBE_SETS)}.{hint}")


def expand(settings: list) -> list[Transform]:
    """Parse ``settings`` into transforms, replacing each probe-set name by its probes.

    A probe set brings the unprocessed baseline ``none`` with it (ROB and curves are ratios to it),
    added first when the list has no ``none``. A setting whose label is already in the list is kept
    once.
    """
    out: list[Transform] = []
    for spec in settings:
        name = _set_name(spec)
        if name is None:
            _check_known(spec)
        out += probes(name) if name else [parse_setting(spec)]
    if any(isinstance(t, Probe) for t in out) and not any(t.label() == "none" for t in out):
        out.insert(0, parse_setting("none"))
    seen: set[str] = set()
    return [t for t in out if not (t.label() in seen or seen.add(t.label()))]
