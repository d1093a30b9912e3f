"""pdbench's own trained weights, shipped inside the package (see docs/model-cards/)."""

from . import AssetSpec

ASSETS = [
    AssetSpec(
        name="stargan-celeba-64-pdbench",
        path="stargan_celeba64_pdbench.safetensors",
        sha256=None,
        size=None,
        source="trained by pdbench (`pdbench train stargan`), see docs/model-cards/stargan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="generator",
        builtin=True,
        meta={"resolution": 64},
    ),
]
