"""A reader for dlib's serialised DNN files (``dlib::serialize(net)``, the ``.dat`` model files).

Written from dlib's documented format (``dlib/serialize.h``) and the ``serialize`` functions of its
DNN layers (``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``, ``cuda/tensor.h``):

- an integer is a control byte (low nibble: number of bytes that follow, ``0x80``: negative)
  followed by that many little-endian magnitude bytes;
- a floating-point value is a ``float_details``: the integer mantissa, then the integer exponent,
  meaning ``mantissa * 2**exponent`` (``serialize.h``'s prose says exponent first; its code, which
  produced the files, writes the mantissa first);
- a bool is the ASCII byte ``'1'`` or ``'0'``; a string is its length (an integer) then its bytes;
- a tensor is version 2, its four dimensions ``(num_samples, k, nr, nc)``, then the values as raw
  little-endian float32; an ``alias_tensor`` (a view's shape) is version 1 and the four dimensions.

A network ``loss<layer_n<...<layer_1<input>>>>`` is written outside-in: the loss layer's version and
details, then each wrapper's version from the top layer down (``add_layer``, ``add_tag_layer`` and
``add_skip_layer`` alike), then the input layer's details, then, from the bottom layer up, each
computational layer's details followed by its bookkeeping (flags and cached tensors). Tags and skips
carry no data, and which tag an ``add_prev`` adds is part of the C++ type, not of the file, so the
reader needs the network's layer plan (:class:`LayerKind` per layer, input to output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import numpy as np


class DlibFormatError(ValueError):
    """A file does not hold the dlib network that was expected; the message names the file and offset."""


class LayerKind(Enum):
    """What one layer of a dlib network is in its C++ type (a computational layer, a tag or a skip)."""

    CON = "con"
    AFFINE = "affine"
    RELU = "relu"
    MAX_POOL = "max_pool"
    AVG_POOL = "avg_pool"
    ADD_PREV = "add_prev"
    FC = "fc"
    TAG = "tag"
    SKIP = "skip"

    @property
    def carries_data(self) -> bool:
        """Tags and skips are pure wrappers: only a version number in the file."""
        return self not in (LayerKind.TAG, LayerKind.SKIP)


@dataclass
class DlibLayer:
    """One computational layer as stored: its kind, version tag, attributes and parameter tensors."""

    kind: LayerKind
    version: str
    attributes: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A deserialised network: loss and input details, and its computational layers, input to output."""

    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[DlibLayer]


class Reader:
    """Reads dlib's primitive encodings from a binary stream; errors name the source and the offset."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream = stream
        self.name = name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.stream.tell()} (not a dlib network of the expected type?)")

    def read(self, count: int) -> bytes:
        data = self.stream.read(count)
        if len(data) != count:
            raise self.fail(f"file ends early: wanted {count} bytes, got {len(data)}")
        return data

    def int(self) -> int:
        control = self.read(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.fail(f"invalid integer control byte 0x{control:02x}")
        value = int.from_bytes(self.read(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        specials = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        return specials[exponent] if exponent in specials else float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        byte = self.read(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"invalid bool byte {byte!r}")
        return byte == b"1"

    def string(self, limit: int = 256) -> str:
        size = self.int()
        if not 0 <= size <= limit:
            raise self.fail(f"string length {size} is out of range")
        return self.read(size).decode("ascii", errors="replace")

    def version(self, allowed: Sequence[int], what: str) -> int:
        value = self.int()
        if value not in allowed:
            raise self.fail(f"{what} has version {value}; expected one of {list(allowed)}")
        return value

    def tensor(self) -> np.ndarray:
        self.version((2,), "tensor")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        return np.frombuffer(self.read(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, ...]:
        self.version((1,), "alias_tensor")
        return tuple(self.int() for _ in range(4))

    def tag(self, expected: Sequence[str], what: str) -> str:
        version = self.string()
        if version not in expected:
            raise self.fail(f"expected a {what} layer ({' or '.join(expected)}), found {version!r}")
        return version


def _con(reader: Reader, layer: DlibLayer) -> None:
    attributes, tensors = layer.attributes, layer.tensors
    tensors["params"] = reader.tensor()
    for name in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        attributes[name] = reader.int()
    attributes["filters"] = reader.alias_shape()
    attributes["biases"] = reader.alias_shape()
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        attributes[name] = reader.float()
    attributes["use_bias"] = reader.bool() if layer.version in ("con_5", "con_6") else True
    attributes["use_relu"] = reader.bool() if layer.version == "con_6" else False


def _affine(reader: Reader, layer: DlibLayer) -> None:
    layer.tensors["params"] = reader.tensor()
    layer.attributes["gamma"] = reader.alias_shape()
    layer.attributes["beta"] = reader.alias_shape()
    layer.attributes["mode"] = "fc" if reader.int() == 1 else "conv"
    layer.attributes["disabled"] = reader.bool() if layer.version == "affine_2" else False


def _relu(reader: Reader, layer: DlibLayer) -> None:
    layer.attributes["disabled"] = reader.bool() if layer.version == "relu_2" else False


def _pool(reader: Reader, layer: DlibLayer) -> None:
    for name in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        layer.attributes[name] = reader.int()


def _fc(reader: Reader, layer: DlibLayer) -> None:
    layer.attributes["num_outputs"] = reader.int()
    layer.attributes["num_inputs"] = reader.int()
    layer.tensors["params"] = reader.tensor()
    layer.attributes["weights"] = reader.alias_shape()
    layer.attributes["biases"] = reader.alias_shape()
    layer.attributes["bias_mode"] = reader.int()
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        layer.attributes[name] = reader.float()
    layer.attributes["use_bias"] = reader.bool() if layer.version == "fc_3" else layer.attributes["bias_mode"] == 0


#: Layer kind -> (accepted version tags, reader of the rest of its details). ``bn_con2``/``bn_fc2`` (a
#: batch-norm layer saved in training form) are not read: a deployed dlib model stores ``affine_``.
LAYER_DETAILS: dict[LayerKind, tuple[tuple[str, ...], Callable[[Reader, DlibLayer], None]]] = {
    LayerKind.CON: (("con_4", "con_5", "con_6"), _con),
    LayerKind.AFFINE: (("affine_", "affine_2"), _affine),
    LayerKind.RELU: (("relu_", "relu_2"), _relu),
    LayerKind.MAX_POOL: (("max_pool_2",), _pool),
    LayerKind.AVG_POOL: (("avg_pool_2",), _pool),
    LayerKind.ADD_PREV: (("add_prev_",), lambda reader, layer: None),
    LayerKind.FC: (("fc_2", "fc_3"), _fc),
}


def _input_rgb_image_sized(reader: Reader) -> dict[str, Any]:
    reader.tag(("input_rgb_image_sized",), "input_rgb_image_sized")
    means = [reader.float() for _ in range(3)]
    return {"kind": "input_rgb_image_sized", "mean_rgb": means, "rows": reader.int(), "columns": reader.int()}


def _loss_metric(reader: Reader) -> dict[str, Any]:
    version = reader.tag(("loss_metric_", "loss_metric_2"), "loss_metric")
    if version == "loss_metric_":
        return {"kind": "loss_metric", "margin": 0.1, "dist_thresh": 0.75}  # the values that version fixed
    return {"kind": "loss_metric", "margin": reader.float(), "dist_thresh": reader.float()}


def _layer_bookkeeping(reader: Reader, version: int, bottom: bool) -> None:
    """The flags and cached tensors ``add_layer`` writes after a layer's details (discarded).

    Above another layer: setup flag, gradient flag, disabled flag, x_grad, cached output and (version
    2) params_grad. Directly above the input: the same flags and tensors, grad_final and (version 3)
    the sample expansion factor.
    """
    for _ in range(3):
        reader.bool()
    for _ in range(3 if bottom or version == 2 else 2):
        reader.tensor()
    if bottom and version == 3:
        reader.int()


def read_network(
    path: str | Path,
    plan: Sequence[LayerKind],
    read_input: Callable[[Reader], dict[str, Any]] = _input_rgb_image_sized,
    read_loss: Callable[[Reader], dict[str, Any]] = _loss_metric,
) -> DlibNetwork:
    """Deserialise the dlib network at ``path`` whose layers, input to output, are ``plan``.

    ``plan`` lists every layer above the input layer and below the loss, tags and skips included
    (their positions fix the file's layout). The defaults read an ``input_rgb_image_sized`` input
    and a ``loss_metric`` loss, as in dlib's face-recognition ResNet.
    """
    path = Path(path)
    if not plan or not plan[0].carries_data:
        raise ValueError("plan must start with a computational layer directly above the input")
    with path.open("rb") as stream:
        reader = Reader(stream, str(path))
        reader.version((1,), "add_loss_layer")
        loss = read_loss(reader)
        versions = [
            reader.version((2, 3) if i == 0 else (1, 2) if kind.carries_data else (1,), f"layer {i} ({kind.value})")
            for i, kind in reversed(list(enumerate(plan)))
        ][::-1]
        network_input = read_input(reader)
        layers = []
        for i, (kind, version) in enumerate(zip(plan, versions)):
            if not kind.carries_data:
                continue
            tags, read_details = LAYER_DETAILS[kind]
            layer = DlibLayer(kind, reader.tag(tags, f"{kind.value} (layer {i})"))
            read_details(reader, layer)
            _layer_bookkeeping(reader, version, bottom=i == 0)
            layers.append(layer)
        trailing = stream.read(1)
        if trailing:
            raise reader.fail("unexpected data after the last layer")
    return DlibNetwork(loss=loss, input=network_input, layers=layers)

