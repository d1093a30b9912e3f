"""Training deepfake generators with their official recipes (``pdbench train <method>``).

Each recipe is one module here whose trainer class registers itself in ``TRAINERS``; the loop,
checkpoints and resume live in :mod:`pdbench.train.loop`.
"""

from ..registry import Registry

TRAINERS: Registry = Registry("training recipe", __name__)
