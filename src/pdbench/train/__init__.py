"""Training recipes (``pdbench train <method>``): deepfake generators and model-based defenses.

Each recipe is one module here whose trainer class registers itself in ``TRAINERS``
(``@TRAINERS.register("name")``; discovery imports every module of this package, so neither the CLI
nor any list is edited to add one). Generators subclass :class:`~pdbench.train.loop.GANTrainer`
(a generator and its critic: stargan, attgan); a defense's perturbation generator subclasses
:class:`~pdbench.train.loop.PerturbationTrainer` (a frozen target generator, no critic: retentive).
The loop, checkpoints and resume live in :mod:`pdbench.train.loop`.
"""

from ..registry import Registry

TRAINERS: Registry = Registry("training recipe", __name__)
