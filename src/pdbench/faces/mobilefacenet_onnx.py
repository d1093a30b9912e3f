"""The second MobileFaceNet (darzhz/pixamatch's ``mobilefacenet.onnx``, another training), converted to torch.

The ONNX graph (opset 11, exported from PyTorch with BatchNorm folded into the convolutions) uses six
operators only: Conv, Clip (ReLU6), Relu, Add, Reshape and Constant. :class:`OnnxGraph` converts it into
a torch module: every initializer becomes a buffer and every node the matching ``torch`` call, in the
graph's topological order, so the network is differentiable and runs batched on any device. (The
``onnx2torch`` package would do the same but imports torchvision at import time, which pdbench cannot
use; an operator outside the six is refused with a one-line error.) The conversion is checked against
OpenCV's independent ONNX runtime (``cv2.dnn.readNetFromONNX``) in the tests.

Preprocessing as in pixamatch (scripts/processor.py): a face crop resized to 112×112, BGR channel
order (``cv2.imread``), (v − 127.5)/128. Like :class:`~pdbench.faces.identity.IdentityEmbedder`, an
image is embedded with its mirror image and the two 128-d features are concatenated and L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AssetCorruptError
from .identity import BOXES, IdentityEmbedder

OPS = ("Conv", "Clip", "Relu", "Add", "Reshape", "Constant")


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxGraph(nn.Module):
    """An ONNX graph of Conv/Clip/Relu/Add/Reshape/Constant nodes as a torch module (one input, one output)."""

    def __init__(self, model):
        super().__init__()
        from onnx import numpy_helper

        g = model.graph
        self.names: dict[str, str] = {}  # ONNX tensor name -> buffer name
        for i, init in enumerate(g.initializer):
            key = f"w{i}"
            self.register_buffer(key, torch.from_numpy(numpy_helper.to_array(init).copy()))
            self.names[init.name] = key
        self.nodes = []
        for node in g.node:
            if node.op_type not in OPS:
                raise AssetCorruptError(f"ONNX operator {node.op_type} is not supported by pdbench's converter "
                                        f"(supported: {', '.join(OPS)}); this is not the expected MobileFaceNet")
            a = _attrs(node)
            if node.op_type == "Constant":
                key = f"c{len(self.names)}"
                self.register_buffer(key, torch.from_numpy(numpy_helper.to_array(a["value"]).copy()))
                self.names[node.output[0]] = key
                continue
            self.nodes.append((node.op_type, list(node.input), node.output[0], a))
        self.input = g.input[0].name
        self.output = g.output[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input: x}

        def get(name):
            return env[name] if name in env else getattr(self, self.names[name])

        for op, ins, out, a in self.nodes:
            if op == "Conv":
                p = a.get("pads", [0, 0, 0, 0])
                if p[0] != p[2] or p[1] != p[3]:
                    raise AssetCorruptError("asymmetric Conv padding in the ONNX graph is not supported")
                b = get(ins[2]) if len(ins) > 2 and ins[2] else None
                y = F.conv2d(get(ins[0]), get(ins[1]), b, stride=a.get("strides", [1, 1]), padding=p[:2],
                             dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
            elif op == "Clip":
                y = get(ins[0]).clamp(float(get(ins[1])), float(get(ins[2])))
            elif op == "Relu":
                y = F.relu(get(ins[0]))
            elif op == "Add":
                y = get(ins[0]) + get(ins[1])
            else:  # Reshape: ONNX semantics (0 keeps the dimension, -1 is inferred); the batch stays free
                shape = [int(s) for s in get(ins[1]).tolist()]
                src = get(ins[0])
                shape = [src.shape[i] if s == 0 else s for i, s in enumerate(shape)]
                y = src.reshape(src.shape[0], *shape[1:])
            env[out] = y
        return env[self.output]


def load_onnx_mobilefacenet() -> OnnxGraph:
    """The checksum-verified ``mobilefacenet-onnx`` asset, converted to torch (eval, frozen)."""
    import onnx

    from ..assets import resolve

    path = resolve("mobilefacenet-onnx")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure means a damaged file
        raise AssetCorruptError(f"{path} is not a readable ONNX model ({e}); restore the asset") from None
    return OnnxGraph(model).eval().requires_grad_(False)


class OnnxIdentityEmbedder(IdentityEmbedder):
    """Images (pdbench convention) -> L2-normalised embeddings (N, 256) of the ONNX MobileFaceNet (112×112, BGR)."""

    size = (112, 112)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return super().prepare(x).flip(1)  # RGB -> BGR; same (v − 127.5)/128 scaling


BOXES.setdefault("celeba-square", (0.17, 0.21, 0.83, 0.87))  # the CelebA face square for 112×112 models
