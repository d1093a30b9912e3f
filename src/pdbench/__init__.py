"""pdbench: a benchmark and toolkit for proactive defenses against deepfake generation.

The tensor convention used at every generator and defense boundary is documented once, in
:mod:`pdbench.tensors`.
"""

__version__ = "0.1.0"
