"""What the harness can benchmark: anything with the encode contract, plus the baselines.

The contract (what :class:`BenchEncoder` needs from a model):

* ``encode(items, batch_size=..., show_progress_bar=...) -> float array (N, D)`` where items are geovec
  item dicts that carry their ``instruction``;
* ``model_id`` and ``revision`` (strings; they key the embedding cache);
* optionally ``query_instruction(task)`` and ``document_instruction(task, item)`` for the model's own named
  instructions (else the geovec defaults are used): :func:`geovec.models.instructions.resolve_instruction`
  decides, the rule ``encode`` itself applies;
* optionally the :class:`~geovec.models.base.EmbeddingModel` extension points ``supports_image_features`` /
  ``image_features`` / ``using_image_features`` (vision features reused across the run) and ``stage_seconds``
  (forward-pass time); every geovec model has them.

Baselines: :class:`ChanceEncoder` (seeded random vectors), the frozen towers (``geovec-compact-untrained``,
a normal geovec model) and :class:`OpenCLIPAdapter` for open_clip-style dual encoders.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from geovec.inputs import parse_item
from geovec.inputs.raster import read_image
from geovec.models.instructions import resolve_instruction


class ImageFeatureMemo:
    """Reuses vision feature maps of images seen earlier in the run (keyed by pixel content).

    A benchmark embeds the same image many times: under each task kind's instruction (RSICD val images 3x) and
    with each of its boxes (a mosaic once per region and side). The vision tower's output does not depend on
    instruction, box or batch, so computing it once per distinct image gives the same embeddings for a
    fraction of the work. Bounded to ``max_bytes`` (least recently used first out).
    """

    def __init__(self, compute: Callable[[list], list], max_bytes: int = 1 << 30):
        self.compute = compute
        self.max_bytes = max_bytes
        self.store: OrderedDict[str, Any] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(pixels) -> str:
        arr = pixels.detach().cpu().contiguous().numpy()
        return hashlib.sha1(arr.tobytes()).hexdigest() + str(arr.shape)

    def __call__(self, pixels: list) -> list:
        keys = [self.key(p) for p in pixels]
        todo: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.store:
                todo.setdefault(k, i)
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            for k, fmap in zip(todo, self.compute([pixels[i] for i in todo.values()])):
                self.store[k] = fmap.detach()
                self.bytes += fmap.numel() * fmap.element_size()
        out = []
        for k in keys:
            self.store.move_to_end(k)
            out.append(self.store[k])
        while self.bytes > self.max_bytes and len(self.store) > len(set(keys)):
            _, old = self.store.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
        return out


class BenchEncoder:
    """Wraps a model with the encode contract; resolves instructions and reports the model's forward time.

    ``reuse_image_features``: for models with ``supports_image_features`` (geovec's single encoder and the
    dual-path model), vision feature maps are memoised during this encoder's ``encode`` calls
    (:class:`ImageFeatureMemo`, through the model's ``using_image_features``), so the memo never outlives the
    benchmark or sees changed weights.
    """

    def __init__(self, model: Any, batch_size: int = 32, reuse_image_features: bool = True):
        for attr in ("encode", "model_id", "revision"):
            if not hasattr(model, attr):
                raise TypeError(f"{type(model).__name__} lacks {attr!r}: a benchmarked model needs encode(), "
                                "model_id and revision")
        self.model = model
        self.batch_size = batch_size
        self.encode_seconds = 0.0
        self.feature_memo: ImageFeatureMemo | None = None
        if reuse_image_features and getattr(model, "supports_image_features", False):
            self.feature_memo = ImageFeatureMemo(model.image_features)

    @property
    def model_id(self) -> str:
        return str(self.model.model_id)

    @property
    def revision(self) -> str:
        """The model's revision; a reduced-precision backend (``openvino-bf16``, ``onnx-int8``) gives different
        embeddings, so it gets its own revision (and with it its own cache namespace and results folder)."""
        rev = str(self.model.revision)
        backend = str(getattr(self.model, "backend", "") or "")
        from geovec.runtime.backends import PRECISION_BACKEND

        for precision in PRECISION_BACKEND:  # the reduced precisions
            if backend.endswith(f"-{precision}"):
                return f"{rev}+{precision}"
        return rev

    @property
    def namespace(self) -> str:
        """The embedding cache's key for this model: id @ revision, plus the int8 graphs' fingerprint (a new
        quantisation recipe gives new embeddings under the same revision)."""
        base = f"{self.model_id}@{self.revision}"
        runner = getattr(self.model, "runner", None)
        if self.revision.endswith("+int8") and runner is not None and getattr(runner, "paths", None):
            key = ",".join(f"{g}:{Path(p).name}" for g, p in sorted(runner.paths.items()))
            base += "#" + hashlib.sha256(key.encode()).hexdigest()[:12]
        return base

    @property
    def forward_seconds(self) -> float:
        """Seconds the model spent in forward passes so far (its ``stage_seconds``; 0 for models without)."""
        return float(getattr(self.model, "stage_seconds", {}).get("forward", 0.0))

    def instructed(self, items: Sequence[dict], task: str, side: str, override: str | None = None) -> list[dict]:
        """``items`` with the instruction this model embeds them with for ``task`` on ``side`` (``override``:
        the task spec's literal instruction): :func:`~geovec.models.instructions.resolve_instruction`."""
        out = []
        for i, it in enumerate(items):
            instr = resolve_instruction(parse_item(it, i), task, side, override, self.model)
            out.append({**it, "instruction": instr} if instr else dict(it))
        return out

    def encode(self, items: Sequence[dict]) -> np.ndarray:
        t = time.perf_counter()
        memo = self.model.using_image_features(self.feature_memo) if self.feature_memo is not None else nullcontext()
        try:
            with memo:
                out = self.model.encode(list(items), batch_size=self.batch_size, show_progress_bar=False)
        finally:
            self.encode_seconds += time.perf_counter() - t
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(items):
            raise ValueError(f"{self.model_id}.encode returned shape {out.shape} for {len(items)} items")
        return out


class ChanceEncoder:
    """The chance baseline: a seeded random unit vector per distinct item (same item -> same vector), so
    every metric sits at its chance level."""

    def __init__(self, dim: int = 64, seed: int = 0):
        self.dim, self.seed = dim, seed
        self.model_id = "chance"
        self.revision = f"seed{seed}-d{dim}"

    def encode(self, items, batch_size: int = 32, show_progress_bar: bool | None = None, **_) -> np.ndarray:
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for i, raw in enumerate(items):
            key = parse_item(raw, i).content_key()
            seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{key}".encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(image_size: int = 224) -> Callable[[Any], Any]:
    """open_clip's eval transform without torchvision: resize shorter side (bicubic), centre crop, normalise."""
    import torch
    from PIL import Image

    def preprocess(pil: "Image.Image"):
        w, h = pil.size
        s = image_size / min(w, h)
        pil = pil.resize((max(image_size, round(w * s)), max(image_size, round(h * s))), Image.BICUBIC)
        w, h = pil.size
        left, top = (w - image_size) // 2, (h - image_size) // 2
        pil = pil.crop((left, top, left + image_size, top + image_size))
        x = torch.from_numpy(np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]

    return preprocess


class OpenCLIPAdapter:
    """Benchmark an open_clip-style dual encoder (``encode_image(B,3,H,W)``, ``encode_text(tokens)``).

    How interleaved items map onto a dual encoder (the usual dual-encoder baselines of the field):

    * image -> ``encode_image``; text -> ``encode_text`` (instructions are ignored: CLIP has none);
    * image + box(es) -> the image cropped to the union of the boxes (region crop);
    * location -> the text ``"latitude {lat:.4f}, longitude {lon:.4f}"``;
    * several modalities -> the sum of their unit embeddings (score fusion), re-normalised.

    ``tokenizer``: callable ``list[str] -> LongTensor``; ``preprocess``: callable ``PIL -> (3, H, W)`` tensor
    (open_clip's own transform works; default :func:`clip_preprocess`).
    """

    def __init__(self, model, tokenizer, preprocess=None, model_id: str = "open_clip", revision: str = "unknown",
                 device: str = "cpu"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess or clip_preprocess()
        self.model_id, self.revision, self.device = model_id, revision, device

    def _images(self, images: list) -> np.ndarray:
        import torch
        from PIL import Image

        batch = torch.stack([self.preprocess(Image.fromarray(im)) for im in images]).to(self.device)
        with torch.inference_mode():
            return self.model.encode_image(batch).float().cpu().numpy()

    def _texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(texts).to(self.device)).float().cpu().numpy()

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)

    def encode(self, items, batch_size: int = 32, show_progress_bar: bool | None = None, **_) -> np.ndarray:
        parsed = [parse_item(raw, i) for i, raw in enumerate(items)]
        parts: list[list[tuple[str, Any]]] = []
        for it in parsed:
            p: list[tuple[str, Any]] = []
            if it.image is not None:
                px = read_image(it.image).pixels
                if it.boxes:
                    x1 = int(min(b[0] for b in it.boxes)); y1 = int(min(b[1] for b in it.boxes))
                    x2 = int(np.ceil(max(b[2] for b in it.boxes))); y2 = int(np.ceil(max(b[3] for b in it.boxes)))
                    px = px[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
                p.append(("image", px))
            if it.text is not None:
                p.append(("text", it.text))
            if it.lat is not None:
                p.append(("text", f"latitude {it.lat:.4f}, longitude {it.lon:.4f}"))
            parts.append(p)
        flat_img = [(i, v) for i, p in enumerate(parts) for k, v in p if k == "image"]
        flat_txt = [(i, v) for i, p in enumerate(parts) for k, v in p if k == "text"]
        sums: dict[int, np.ndarray] = {}
        for flat, fn in ((flat_img, self._images), (flat_txt, self._texts)):
            for s in range(0, len(flat), batch_size):
                chunk = flat[s : s + batch_size]
                emb = self._unit(fn([v for _, v in chunk]))
                for (i, _), e in zip(chunk, emb):
                    sums[i] = sums[i] + e if i in sums else e.copy()
        out = np.stack([sums[i] for i in range(len(parsed))]).astype(np.float32)
        return self._unit(out)

    @classmethod
    def from_open_clip(cls, arch: str, pretrained: str, device: str = "cpu") -> "OpenCLIPAdapter":
        """Load with the ``open_clip`` package (``pretrained`` = a local checkpoint path or open_clip tag;
        nothing is downloaded unless open_clip itself does so)."""
        try:
            import open_clip
        except ImportError as e:
            raise ImportError("the open_clip adapter needs `pip install open_clip_torch`") from e
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device=device)
        return cls(model, open_clip.get_tokenizer(arch), preprocess, model_id=f"open_clip:{arch}",
                   revision=str(pretrained), device=device)


def chance_encoder(dim: str = "", **_) -> ChanceEncoder:
    """The ``chance`` / ``chance:<dim>`` name scheme (:data:`geovec.models.registry.NAME_SCHEMES`)."""
    return ChanceEncoder(dim=int(dim) if dim else 64)


def open_clip_encoder(spec: str, device: str | None = None, **_) -> OpenCLIPAdapter:
    """The ``open_clip:<arch>:<pretrained>`` name scheme (:data:`geovec.models.registry.NAME_SCHEMES`)."""
    arch, sep, pretrained = spec.partition(":")
    if not sep or not arch:
        raise ValueError(f"open_clip:{spec}: name a model as open_clip:<arch>:<pretrained>")
    return OpenCLIPAdapter.from_open_clip(arch, pretrained, device=device or "cpu")


def load_encoder(name_or_path: str | None, batch_size: int = 32, num_threads: int | None = None) -> BenchEncoder:
    """``chance`` / ``chance:<dim>``, ``open_clip:<arch>:<pretrained>``, ``probe:<dir>``, or any geovec model
    name or path: whatever :func:`geovec.models.registry.load_model` resolves."""
    from geovec.models.registry import DEFAULT_MODEL, load_model

    return BenchEncoder(load_model(name_or_path or DEFAULT_MODEL, num_threads=num_threads), batch_size)
