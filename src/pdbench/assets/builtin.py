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
        meta={"resolution": 64, "critic": "stargan-celeba-64-pdbench-critic"},
    ),
    AssetSpec(
        name="stargan-celeba-64-pdbench-critic",
        path="stargan_celeba64_pdbench_critic.safetensors",
        sha256="d7232e1b64162fac99fe4290544596caba01c611c5f467878d2fd01a0d6eb7d8",
        size=1411392,
        source="the critic (discriminator) of the same training run and step as stargan-celeba-64-pdbench, "
               "for fine-tuning it (`pdbench train stargan --init stargan-celeba-64-pdbench`)",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="critic",
        builtin=True,
        meta={"resolution": 64},
    ),
    AssetSpec(
        name="attgan-celeba-64-pdbench",
        path="attgan_celeba64_pdbench.safetensors",
        sha256="46fd3526af48f558ee9eaeec1cb5f3e7777b662158cfa3044b8db46dee93bc0c",
        size=5489630,
        source="trained by pdbench (`pdbench train attgan`), see docs/model-cards/attgan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="generator",
        builtin=True,
        meta={"resolution": 64},
    ),
    AssetSpec(
        name="comgan-celeba-64-pdbench",
        path="comgan_celeba64_pdbench.safetensors",
        sha256="835b85f086cc35f6caaf35ebf1e7b20185983b12c3a116ed5c1e986f7d8ae7b7",
        size=5115366,
        source="trained by pdbench (`pdbench train comgan`): DF-RAP's ComG (width 16) on libjpeg pairs at DF-RAP's OSN "
               "qualities, see docs/model-cards/comgan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="surrogate",
    ),
    AssetSpec(
        name="attentiongan-celeba-64-pdbench",
        path="attentiongan_celeba64_pdbench.safetensors",
        sha256="30b7f9315b6a6090891dab35024187e8c0786430550b58e7ed0a2396ea8379c1",
        size=1084128,
        source="trained by pdbench (`pdbench train attentiongan --init stargan-celeba-64-pdbench`), see "
               "docs/model-cards/attentiongan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="generator",
        builtin=True,
        meta={"resolution": 64},
    ),
    AssetSpec(
        name="retentive-stargan-celeba-64-pdbench",
        path="retentive_stargan_celeba64_pdbench.safetensors",
        sha256="353739659c7097648898f7b1c8ee92636730bddd942b8e8d0940da865d6d2f46",
        size=3671246,
        source="trained by pdbench (`pdbench train retentive`) against stargan-celeba-64-pdbench, "
               "see docs/model-cards/retentive-stargan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="defense",
        builtin=True,
        meta={"resolution": 64, "ngf": 16, "num_downs": 6, "target": "stargan-celeba-64-pdbench"},
    ),
    AssetSpec(
        name="fpgan-celeba-64-pdbench",
        path="fpgan_celeba64_pdbench.safetensors",
        sha256="c2f4d81773c712fd5b623deacadb2eac7a6d75ead296cb0df2d8299d2d5fe281",
        size=1082560,
        source="trained by pdbench (`pdbench train fpgan --init stargan-celeba-64-pdbench`), see "
               "docs/model-cards/fpgan-celeba-64-pdbench.md",
        url=None,
        licence="weights: CC BY-NC 4.0 (trained on CelebA, research use only)",
        kind="generator",
        builtin=True,
        meta={"resolution": 64},
    ),
]
