"""Face datasets: any folder of photos, with CelebA-format attribute labels where the set has them."""

from .folder import FaceFolder, read_attr_file

__all__ = ["FaceFolder", "read_attr_file"]
