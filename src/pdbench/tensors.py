"""The one tensor convention of pdbench.

Every image that crosses a generator, defense, transform or metric boundary is

* a ``torch.Tensor`` of shape ``(N, 3, H, W)`` (NCHW, batch first, even for one image),
* ``float32``, RGB channel order,
* in the range ``[-1, 1]`` (``-1`` black, ``1`` white), matching the tanh output of the generators,
* on the device of the model it is handed to (CPU unless a CUDA device was chosen).

Perturbation budgets (ε, step sizes) are therefore on the [-1, 1] scale: ε = 0.05 there equals
0.025 on [0, 1] (≈ 6.4/255). Conversions to and from uint8 images and [0, 1] live here and check what
they are given.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InputError

RANGE = (-1.0, 1.0)
_TOL = 1e-4


def check_images(x: torch.Tensor, what: str = "images", range_: tuple[float, float] = RANGE) -> torch.Tensor:
    """Check the pdbench convention and return ``x``; raise :class:`InputError` naming what is wrong."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what}: expected a torch.Tensor of shape (N, 3, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(
            f"{what}: expected shape (N, 3, H, W) (NCHW, RGB), got {tuple(x.shape)}; "
            "add a batch dimension with x[None] or permute HWC to CHW"
        )
    if not x.is_floating_point():
        raise InputError(f"{what}: expected a float tensor in [-1, 1], got dtype {x.dtype}; use pdbench.tensors.from_uint8")
    if x.dtype != torch.float32 and not (x.dtype in (torch.float16, torch.bfloat16) and _autocast_on(x)):
        raise InputError(f"{what}: expected float32, got {x.dtype}; convert explicitly with x.float()")
    if x.shape[0] == 0:
        raise InputError(f"{what}: the batch is empty (shape {tuple(x.shape)}); pass at least one image")
    if x.numel():
        if not bool(torch.isfinite(x.detach()).all()):
            bad = int((~torch.isfinite(x.detach())).flatten(1).any(1).sum())
            raise InputError(f"{what}: {bad} image(s) contain NaN or Inf values; check what produced them")
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if lo < range_[0] - _TOL or hi > range_[1] + _TOL:
            hint = " (looks like [0, 255]: use from_uint8)" if hi > 2 else ""
            raise InputError(f"{what}: values span [{lo:.3f}, {hi:.3f}], expected {list(range_)}{hint}")
    return x


def _autocast_on(x: torch.Tensor) -> bool:
    """Half-precision images are legitimate inside an autocast region (mixed-precision training) only."""
    try:
        return torch.is_autocast_enabled(x.device.type)
    except TypeError:  # older torch: no device argument
        return torch.is_autocast_enabled()


def from_uint8(img: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 image(s) HWC or NHWC (numpy or torch) -> float32 NCHW in [-1, 1]."""
    arr = torch.tensor(np.asarray(img))  # copies: decoded images may be read-only
    if arr.dtype != torch.uint8:
        raise InputError(f"from_uint8: expected dtype uint8, got {arr.dtype}")
    if arr.dim() == 3:
        arr = arr[None]
    if arr.dim() != 4 or arr.shape[-1] != 3:
        raise InputError(f"from_uint8: expected (H, W, 3) or (N, H, W, 3), got {tuple(arr.shape)}")
    return arr.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC numpy (values outside the range are clamped, rounding to nearest)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"to_uint8: expected shape (N, 3, H, W), got {tuple(x.shape)}")
    y = (x.detach().float().clamp(-1, 1) + 1.0) * 127.5
    return y.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (no clamping)."""
    return (x + 1.0) * 0.5


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] after checking the input range."""
    check_images(x, "from_unit input", (0.0, 1.0))
    return x * 2.0 - 1.0


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": :func:`default_device`; otherwise that device, refusing CUDA where there is none."""
    if spec is None or spec == "auto":
        return default_device()
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise InputError(f"device {spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {spec}: no CUDA device is available here; use cpu")
    return dev
