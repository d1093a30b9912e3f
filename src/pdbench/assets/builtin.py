"""pdbench's own trained weights, shipped inside the package (see docs/model-cards/)."""

from . import AssetSpec

ASSETS = [
    AssetSpec(
        name="stargan-celeba-64-pdbench",
        path="stargan_celeba64_pdbench.safetensors",
        sha256="724bc3aa222cefb6c93a11587d2ce6f3c04a59cf6c83ddedcfcd172d051cf91d",
        size=1082528,
        source="trained by pdbench (`pdbench train stargan`), see docs/model-cards/stargan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="generator",
        builtin=True,
        meta={"resolution": 64},
    ),
]
