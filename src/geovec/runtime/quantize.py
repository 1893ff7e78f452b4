"""int8 graphs for the ``onnx`` backend (``precision="int8"``), built from the fp32 exports and cached.

The recipe is onnxruntime's dynamic quantisation of every MatMul with a constant weight (int8 weights per output
channel, activations quantised per batch at run time), the standard one for BERT-style encoders, applied where
it keeps agreement:

* ``global_text`` (the global path's MiniLM text tower): its int8 copy replaces it;
* ``encoder`` (the single encoder): its int8 copy, ``encoder_text``, runs batches of text-only sequences; batches
  with image, region or location tokens run the fp32 ``encoder``. Dynamic int8 on those mixed sequences (one
  activation scale for text and image tokens) lost 2.7 points of derived-VQA P@1, outside the paired 95 %
  interval;
* ``vision``, ``location`` and ``head`` stay fp32. Static QDQ int8 of the CNN (calibrated on TRAIN images) was
  measured and left out: faithful only with the depthwise convolutions in fp32, and then slower than fp32 in
  onnxruntime on this CPU, at a cost of about one point on scene classes (``docs/performance.md``).

Graph files are named by the fp32 graph's fingerprint, so they are rebuilt exactly when the weights change.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Callable

from geovec.runtime import export as ex

DYNAMIC_GRAPHS = ("global_text",)  # replaced by their int8 copy
TEXT_ONLY_GRAPHS = {"encoder": "encoder_text"}  # fp32 graph -> its int8 copy for text-only batches


def int8_prints(prints: dict[str, str]) -> dict[str, str]:
    """Fingerprints of the int8 graph set: the fp32 graph's where it stays, ``<fp32 print>q8`` for int8 copies."""
    out = dict(prints)
    for g, fp in prints.items():
        if g in DYNAMIC_GRAPHS:
            out[g] = f"{fp}q8"
        if g in TEXT_ONLY_GRAPHS:
            out[TEXT_ONLY_GRAPHS[g]] = f"{fp}q8"
    return out


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantiser logs advice on the root logger and prints progress: keep it quiet."""
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


def int8_graphs(model, paths: dict[str, Path], prints: dict[str, str], log: Callable[[str], None] | None = None
                ) -> tuple[dict[str, Path], dict[str, str]]:
    """The int8 graph set for fp32 ``paths`` (:func:`geovec.runtime.export.ensure_graphs`): int8 copies (built once
    into the graphs cache) where the recipe above quantises, the fp32 graph elsewhere. Returns
    ``(paths, fingerprints)``."""
    qprints = int8_prints(prints)
    out: dict[str, Path] = {}
    jobs: list[tuple[str, Path]] = []  # (name in the set, fp32 source)
    for g, p in paths.items():
        if g in DYNAMIC_GRAPHS:
            jobs.append((g, Path(p)))
        else:
            out[g] = Path(p)
        if g in TEXT_ONLY_GRAPHS:
            jobs.append((TEXT_ONLY_GRAPHS[g], Path(p)))
    cache = ex.graphs_cache() / "int8"
    cache.mkdir(parents=True, exist_ok=True)
    for g, src in jobs:
        dst = cache / f"{g}-{qprints[g]}.onnx"
        if not dst.is_file():
            if log:
                log(f"geovec: building the int8 {g} graph once, cached in {cache}")
            tmp = dst.with_name(f".{dst.stem}.tmp.onnx")
            with _quiet():
                _dynamic(src, tmp)
            tmp.replace(dst)
        out[g] = dst
    return out, {g: qprints[g] for g in out}
