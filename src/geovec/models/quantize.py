"""int8 graphs for the ``onnx`` backend (``precision="int8"``), built from the fp32 exports and cached.

* ``global_text`` (the global path's MiniLM text tower): dynamic quantisation of every MatMul with a constant
  weight (int8 weights per output channel, activations quantised per batch at run time), the standard recipe
  for BERT-style encoders in onnxruntime. The single encoder's graph (``encoder``, whose sequences mix text,
  image, region and location tokens) stays fp32: the same recipe there lost 2.7 points of derived-VQA P@1,
  outside the paired 95 % interval (``docs/performance.md``).
* ``vision`` (EfficientNet-Lite0): static QDQ int8 of the pointwise (1x1 and full) convolutions, weights per
  channel, activation ranges from a calibration set of TRAIN images (the 99.99th percentile of each tensor's
  values). The depthwise convolutions, the first convolution and the last four stay fp32: quantising them costs
  far more agreement than it saves time (measured in ``docs/performance.md``).
* ``encoder`` (above), ``location`` (sines of large angles) and ``head`` (too small to matter) stay fp32.

The calibration set is :func:`calibration_images`: ``CALIBRATION_IMAGES`` RSICD TRAIN images of the data root
when it is there, else generated scenes (:func:`geovec.models.backends.synthetic_scene`), said in one line.
Graph files are named by the fp32 graph's fingerprint (and, for vision, the calibration set's), so they are
rebuilt exactly when either changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from geovec.models import export as ex

DYNAMIC_GRAPHS = ("global_text",)
STATIC_GRAPHS = ("vision",)
CALIBRATION_IMAGES = 64
CALIBRATION_PERCENTILE = 99.99
FP32_LAST_CONVS = 4  # the last convolutions kept fp32 (the feature map the model reads comes out of them)


def calibration_images(n: int = CALIBRATION_IMAGES, seed: int = 0) -> tuple[list, str]:
    """(``n`` images, a description of where they come from): RSICD TRAIN images of the data root, a seeded
    sample, or generated scenes when no data root is there."""
    from geovec.paths import default_data_root

    root = default_data_root()
    if root is not None and (Path(root) / "rsicd").is_dir():
        try:
            from geovec.data import RSICD

            samples = RSICD(Path(root) / "rsicd", "train").samples
            pick = np.random.default_rng(seed).permutation(len(samples))[:n]
            return [str(samples[int(i)]["image"]) for i in pick], f"{len(pick)} RSICD train images of {root}"
        except (OSError, ValueError, KeyError):
            pass
    from geovec.models.backends import synthetic_scene

    return [synthetic_scene(1000 + i, 224, 224) for i in range(n)], f"{n} generated scenes (no RSICD data root)"


def _calibration_print(images: list) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(str(im).encode() if isinstance(im, str) else np.ascontiguousarray(im).tobytes())
    return h.hexdigest()[:12]


def int8_prints(prints: dict[str, str], images: list) -> dict[str, str]:
    """Fingerprints of the int8 graph set: the fp32 graph's, plus the calibration set's for static graphs."""
    cal = _calibration_print(images)
    recipe = f"percentile={CALIBRATION_PERCENTILE}:fp32_last={FP32_LAST_CONVS}"  # a recipe change rebuilds
    out = dict(prints)
    for g in prints:
        if g in DYNAMIC_GRAPHS:
            out[g] = f"{prints[g]}q8"
        elif g in STATIC_GRAPHS:
            out[g] = hashlib.sha256(f"{prints[g]}:{cal}:{recipe}".encode()).hexdigest()[:20] + "q8"
    return out


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantiser prints calibration progress and logs advice on the root logger: keep it quiet."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _dynamic(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])


def _static_vision(model, src: Path, dst: Path, images: list) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from geovec.inputs.item import parse_item

    pixels = [model.prepare(parse_item(im)).pixels.numpy()[None].astype(np.float32) for im in images]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(pixels)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"pixels": x}

    pre = dst.with_name(dst.stem + ".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        keep_fp32 = [n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
        if convs:
            keep_fp32 += [convs[0].name] + [c.name for c in convs[-FP32_LAST_CONVS:]]
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=keep_fp32, calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})
    finally:
        pre.unlink(missing_ok=True)
        for junk in dst.parent.glob("augmented_model*.onnx"):
            junk.unlink(missing_ok=True)


def int8_graphs(model, paths: dict[str, Path], prints: dict[str, str], log: Callable[[str], None] | None = None,
                calibration: list | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """The int8 graph set for fp32 ``paths`` (:func:`geovec.models.export.ensure_graphs`): quantised graphs
    (built once into the graphs cache) where the recipe above quantises, the fp32 graph elsewhere. Returns
    ``(paths, fingerprints)``. ``calibration``: images (paths or arrays) instead of :func:`calibration_images`."""
    if calibration is not None and not len(calibration):
        raise ValueError("the int8 calibration set is empty: give at least one image")
    images, source = ((list(calibration), f"{len(calibration)} given images") if calibration is not None
                      else calibration_images())
    qprints = int8_prints(prints, images)
    out: dict[str, Path] = {}
    cache = ex.graphs_cache() / "int8"
    cache.mkdir(parents=True, exist_ok=True)
    for g, p in paths.items():
        if g not in DYNAMIC_GRAPHS + STATIC_GRAPHS:
            out[g] = p
            continue
        dst = cache / f"{g}-{qprints[g]}.onnx"
        if not dst.is_file():
            tmp = dst.with_name(f".{dst.stem}.tmp.onnx")
            if log:
                log(f"geovec: building the int8 {g} graph once"
                    + (f" (calibration: {source})" if g in STATIC_GRAPHS else "") + f", cached in {cache}")
            with _quiet():
                if g in DYNAMIC_GRAPHS:
                    _dynamic(Path(p), tmp)
                else:
                    _static_vision(model, Path(p), tmp, images)
            tmp.replace(dst)
        out[g] = dst
    return out, qprints
