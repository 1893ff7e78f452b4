"""Training of the frozen-towers probe (:mod:`geovec.models.probe`): feature caches, the LiT image MLP, the
location map, and RSICD retrieval scored the published way.

* :class:`ArrayCache`: a resumable ``.npy`` (fp16) filled in chunks, with a ``.json`` progress file next to
  it; an interrupted build continues where it stopped, a finished one is only read.
* :func:`train_image_head`: symmetric InfoNCE (learnable temperature) between the MLP of the cached pooled
  image features and the frozen sentence embeddings of one random caption per image (LiT), AdamW with a
  short linear warm-up and cosine decay.
* :func:`train_location_map`: the 512 -> 384 map of GeoCLIP features, contrastive against the (frozen) probe
  embeddings of georeferenced training images.
* :func:`caption_retrieval`: RSICD-style R@1/5/10 image->text and text->image, mR = mean of the six.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from geovec.inputs import read_image
from geovec.models.global_path import box_crop, preprocess_pixels
from geovec.models.probe import ProbeModel
from geovec.train import sensor_sim
from geovec.train.cached_loop import optimizer, run_epochs
from geovec.train.loss import capped_scale, info_nce

CACHE_VERSION = 1
VIEWS = ("id", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "transverse")
#: ``sensor<K>``: the K-th seeded :mod:`geovec.train.sensor_sim` variant of every image (another GSD, blur,
#: radiometry and JPEG per image and K)
SENSOR_VIEW = re.compile(r"sensor(\d+)")
SENSOR_SEED = 0


def dihedral(pixels: np.ndarray, view: str) -> np.ndarray:
    """One of the 8 dihedral views of an (H, W, C) image."""
    ops = {
        "id": lambda a: a,
        "hflip": lambda a: a[:, ::-1],
        "vflip": lambda a: a[::-1],
        "rot90": lambda a: np.rot90(a, 1),
        "rot180": lambda a: np.rot90(a, 2),
        "rot270": lambda a: np.rot90(a, 3),
        "transpose": lambda a: a.transpose(1, 0, 2),
        "transverse": lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    }
    if view not in ops:
        raise ValueError(f"unknown view {view!r}; choose from {VIEWS}")
    return np.ascontiguousarray(ops[view](pixels))


def parse_views(text: str) -> list[str]:
    """``"id,hflip,sensor0"`` -> the view names; ValueError naming an unknown one."""
    views = [v.strip() for v in text.split(",") if v.strip()]
    for v in views:
        if v not in VIEWS and not SENSOR_VIEW.fullmatch(v):
            raise ValueError(f"unknown view {v!r}: choose from {', '.join(VIEWS)} or sensor<K> (K = 0, 1, ...)")
    if not views:
        raise ValueError("no view given")
    return views


def render_view(pixels: np.ndarray, view: str, name: str) -> np.ndarray:
    """``pixels`` (H, W, 3 uint8) in ``view``: a dihedral view, or ``sensor<K>``: the seeded sensor simulation
    variant K of the image called ``name`` (deterministic per name and K)."""
    m = SENSOR_VIEW.fullmatch(view)
    if m is None:
        return dihedral(pixels, view)
    image, _ = sensor_sim.simulate(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)), SENSOR_SEED, name,
                                   int(m.group(1)))
    return np.asarray(image)


def view_key(view: str):
    """What a view's cache key holds: its name, and for a simulated view the simulation's version and settings."""
    if SENSOR_VIEW.fullmatch(view):
        return [view, "sensor_sim", sensor_sim.VERSION, SENSOR_SEED, list(sensor_sim.GSD_RANGE_M),
                sensor_sim.SOURCE_GSD_M]
    return view  # unchanged for the dihedral views, so their existing caches stay valid


def content_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ArrayCache:
    """``<dir>/<name>-<key>.npy`` of shape (n, dim) fp16, filled in order by ``fill(compute)``; resumable."""

    def __init__(self, directory: str | Path, name: str, key: str, n: int, dim: int):
        self.dir = Path(directory)
        self.path = self.dir / f"{name}-{key}.npy"
        self.progress_path = self.dir / f"{name}-{key}.json"
        self.n, self.dim, self.key = n, dim, key

    @property
    def done(self) -> int:
        if not self.path.exists() or not self.progress_path.exists():
            return 0
        meta = json.loads(self.progress_path.read_text())
        if meta.get("key") != self.key or meta.get("n") != self.n or meta.get("dim") != self.dim:
            return 0
        return int(meta["done"])

    @property
    def complete(self) -> bool:
        return self.done == self.n

    @property
    def build_seconds(self) -> float | None:
        """Seconds spent computing the rows so far, over all resumes (None for caches from before timing)."""
        if not self.progress_path.exists():
            return None
        return json.loads(self.progress_path.read_text()).get("seconds")

    def _mark(self, done: int, seconds: float | None) -> None:
        tmp = self.progress_path.with_suffix(".json.tmp")
        meta = {"key": self.key, "n": self.n, "dim": self.dim, "done": done}
        if seconds is not None:
            meta["seconds"] = round(seconds, 2)
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.progress_path)

    def fill(self, compute: Callable[[int, int], np.ndarray], chunk: int = 64,
             log: Callable[[str], None] | None = None, label: str = "") -> np.ndarray:
        """``compute(start, stop) -> (stop - start, dim)`` for the rows not yet cached; returns the array."""
        self.dir.mkdir(parents=True, exist_ok=True)
        start = self.done
        spent = 0.0 if start == 0 else self.build_seconds
        if start == 0:
            arr = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float16, shape=(self.n, self.dim))
            self._mark(0, spent)
        else:
            arr = np.lib.format.open_memmap(self.path, mode="r+")
        if start and log and start < self.n:
            log(f"{label}: resuming at {start}/{self.n}")
        t0, last = time.perf_counter(), time.perf_counter()
        for s in range(start, self.n, chunk):
            e = min(self.n, s + chunk)
            t = time.perf_counter()
            arr[s:e] = np.asarray(compute(s, e), dtype=np.float16)
            arr.flush()
            if spent is not None:
                spent += time.perf_counter() - t
            self._mark(e, spent)
            if log and (time.perf_counter() - last > 15 or e == self.n):
                rate = (e - start) / max(time.perf_counter() - t0, 1e-9)
                log(f"{label}: {e}/{self.n} ({rate:.0f}/s)")
                last = time.perf_counter()
        del arr
        return np.load(self.path, mmap_mode="r")


def image_feature_cache(model: ProbeModel, images: Sequence[str | Path], directory: str | Path, name: str,
                        view: str = "id", boxes: Sequence[Sequence[float] | None] | None = None,
                        chunk: int = 64, log: Callable[[str], None] | None = None,
                        stats: dict | None = None) -> np.ndarray:
    """(N, 1280) fp16 pooled vision features of ``images`` (each in ``view``, see :func:`render_view`; optional
    box crop), cached.
    ``stats``: a dict that gets ``{"<name>-<view>": {"rows", "build_seconds"}}``."""
    boxes = list(boxes) if boxes is not None else [None] * len(images)
    key = content_key(CACHE_VERSION, model.config.vision, model.config.image_size, view_key(view),
                      [str(p) for p in images], boxes)
    cache = ArrayCache(directory, f"{name}-{view}", key, len(images), 1280)

    decoded: dict[str, np.ndarray] = {}  # the last image read: boxes of one image usually come together

    def compute(s: int, e: int) -> np.ndarray:
        pixels = []
        for p, b in zip(images[s:e], boxes[s:e]):
            if str(p) not in decoded:
                decoded.clear()
                decoded[str(p)] = read_image(p).pixels
            px = decoded[str(p)]
            if b is not None:
                px = box_crop(px, [b])
            name = Path(p).name if b is None else f"{Path(p).name}:{list(b)}"
            pixels.append(preprocess_pixels(render_view(px, view, name), model.config.image_size))
        with torch.inference_mode():
            return model.pooled_features(pixels).cpu().numpy()

    arr = cache.fill(compute, chunk, log, f"{name} image features ({view})")
    if stats is not None:
        stats[f"{name}-{view}"] = {"rows": cache.n, "build_seconds": cache.build_seconds}
    return arr


def text_embedding_cache(model: ProbeModel, texts: Sequence[str], directory: str | Path, name: str,
                         chunk: int = 512, log: Callable[[str], None] | None = None,
                         stats: dict | None = None) -> np.ndarray:
    """(N, 384) fp16 frozen sentence embeddings, cached (``stats`` as for :func:`image_feature_cache`)."""
    key = content_key(CACHE_VERSION, model.config.text, model.config.max_text_tokens, list(texts))
    cache = ArrayCache(directory, f"{name}-text", key, len(texts), model.embed_dim)
    arr = cache.fill(lambda s, e: model.embed_texts(texts[s:e]).numpy(), chunk, log, f"{name} captions")
    if stats is not None:
        stats[f"{name}-text"] = {"rows": cache.n, "build_seconds": cache.build_seconds}
    return arr


# --- RSICD ---------------------------------------------------------------------------------------------------
def caption_split(root: str | Path, split: str) -> tuple[list[Path], list[str], np.ndarray]:
    """RSICD ``split`` -> (image paths, all captions flattened, owner image index of each caption)."""
    from geovec.data import RSICD

    ds = RSICD(root, split)
    images, captions, owner = [], [], []
    for i, s in enumerate(ds.samples):
        images.append(s["image"])
        for c in s["captions"]:
            captions.append(c)
            owner.append(i)
    return images, captions, np.asarray(owner, dtype=np.int64)


def caption_retrieval(image_emb: np.ndarray, caption_emb: np.ndarray, owner: Sequence[int]) -> dict:
    """RSICD retrieval the published way: every caption is a candidate (i2t; an image's golds are its
    captions) and a query (t2i; gold = its image). Scores in percent; ``mR`` = mean of the six."""
    from geovec.bench.metrics import rank_golds, summarize

    owner = np.asarray(owner)
    golds = [np.flatnonzero(owner == i) for i in range(len(image_emb))]
    i2t = summarize(rank_golds(image_emb, caption_emb, golds))
    t2i = summarize(rank_golds(caption_emb, image_emb, [[int(o)] for o in owner]))
    out = {}
    for side, s in (("i2t", i2t), ("t2i", t2i)):
        for k in (1, 5, 10):
            out[f"{side}_R@{k}"] = 100 * s[f"hit@{k}"]
    out["mR"] = float(np.mean([out[f"{side}_R@{k}"] for side in ("i2t", "t2i") for k in (1, 5, 10)]))
    out["n_i2t"], out["n_t2i"] = int(i2t["n_queries"]), int(t2i["n_queries"])
    return out


def train_pool_retrieval(image_emb: np.ndarray, caption_emb: np.ndarray, owner: Sequence[int], pool_size: int,
                         pools: int = 5, seed: int = 0) -> dict:
    """The fit on the training data, on the val protocol: :func:`caption_retrieval` over ``pools`` random pools of
    ``pool_size`` training images (with all their captions), so the score is comparable to val's at the same pool
    size. Train mR far above val mR means the recipe is limited by data, not by capacity.
    Returns ``{"pool_size", "pools", "mR": [per pool], "mean_mR"}``."""
    owner = np.asarray(owner)
    if not 0 < pool_size <= len(image_emb):
        raise ValueError(f"pool_size {pool_size} must be between 1 and the {len(image_emb)} training images")
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(pools):
        pick = np.sort(rng.choice(len(image_emb), pool_size, replace=False))
        rows = np.flatnonzero(np.isin(owner, pick))
        local = np.searchsorted(pick, owner[rows])
        scores.append(caption_retrieval(image_emb[pick], caption_emb[rows], local)["mR"])
    return {"pool_size": int(pool_size), "pools": int(pools), "mR": [round(x, 2) for x in scores],
            "mean_mR": round(float(np.mean(scores)), 2)}


def caption_identity(captions: Sequence[str]) -> np.ndarray:
    """(N,) int ids, equal where two captions are the same text up to case, spacing and a final full stop
    (RSICD: 46,682 train captions, 14,420 distinct texts)."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(" ".join(c.lower().split()).rstrip(" ."), len(ids)) for c in captions])


def train_image_head(model: ProbeModel, features: Sequence[np.ndarray], caption_emb: np.ndarray,
                     owner: Sequence[int], epochs: int = 8, batch_size: int = 128, lr: float = 1e-3,
                     weight_decay: float = 0.05, warmup_steps: int = 20, seed: int = 0,
                     evaluate: Callable[[ProbeModel], dict] | None = None,
                     log: Callable[[str], None] = print, max_steps: int | None = None,
                     caption_ids: Sequence[int] | None = None) -> list[dict]:
    """LiT: train ``model.image_head`` (+ ``logit_scale``) on (image, random one of its captions) pairs.

    ``features``: one (N, 1280) array per cached view (a random view per image and step). ``caption_ids``
    (one per caption, e.g. :func:`caption_identity`): captions with the same id count as positives of each
    other's images instead of in-batch negatives. Returns one record per epoch (steps so far, mean loss,
    temperature, and ``evaluate(model)``'s scores when given)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    feats = torch.stack([torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in features])  # (V, N, C)
    caps = torch.from_numpy(np.asarray(caption_emb, dtype=np.float32))
    owner = np.asarray(owner)
    cap_ids = None if caption_ids is None else torch.as_tensor(np.asarray(caption_ids))
    if cap_ids is not None and len(cap_ids) != len(caps):
        raise ValueError(f"caption_ids has {len(cap_ids)} entries for {len(caps)} captions")
    n = feats.shape[1]
    slots = [torch.from_numpy(np.flatnonzero(owner == i)) for i in range(n)]
    if any(len(s) == 0 for s in slots):
        raise ValueError("every training image needs at least one caption")
    steps_per_epoch = max(1, n // batch_size) if n >= batch_size else 1

    def batches(epoch: int):  # one generator for the whole run: its draws continue across epochs
        perm = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            view = torch.randint(feats.shape[0], (len(idx),), generator=gen)
            pick = [slots[int(i)][int(torch.randint(len(slots[int(i)]), (1,), generator=gen))] for i in idx]
            yield feats[view, idx], torch.stack(pick)

    def loss_of(batch) -> torch.Tensor:
        x, pick = batch
        z = F.normalize(model.embed_image_features(x), dim=-1)
        positive = torch.eye(len(pick), dtype=torch.bool)
        if cap_ids is not None:
            positive = cap_ids[pick][:, None] == cap_ids[pick][None, :]
        return info_nce(z, caps[pick], positive, capped_scale(model.logit_scale), normalize=False, symmetric=True)

    params = list(model.image_head.parameters()) + [model.logit_scale]
    return run_epochs(optimizer([(params, lr)], weight_decay), {"image_head": model.image_head}, model.logit_scale,
                      batches, loss_of, epochs, steps_per_epoch, warmup_steps, total_steps=max_steps,
                      evaluate=None if evaluate is None else lambda: evaluate(model), log=log)


def embed_features(head: Callable[[torch.Tensor], torch.Tensor], features: np.ndarray,
                   batch: int = 4096) -> np.ndarray:
    """(N, d) unit image embeddings of cached pooled features through ``head`` (an image MLP, or a probe's
    ``embed_image_features``)."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(features), batch):
            x = torch.from_numpy(np.asarray(features[s : s + batch], dtype=np.float32))
            out.append(F.normalize(head(x), dim=-1).cpu().numpy())
    return np.concatenate(out)


# --- location ------------------------------------------------------------------------------------------------
def geo_training_places(data_root: str | Path, cache_dir: str | Path | None = None,
                        split: str = "train") -> tuple[list[dict], str]:
    """Georeferenced places of the benchmark (:func:`geovec.data.geo.geo_places`: its chips and spatially held-out
    split). Returns (places, source description). Train the location map on ``split="train"`` only."""
    from geovec.data.geo import geo_places

    places = list(geo_places(data_root, split=split, cache_dir=cache_dir))
    return places, f"geovec.data.geo.geo_places(split={split!r})"


def train_location_map(model: ProbeModel, location_feats: np.ndarray, image_emb: np.ndarray,
                       steps: int = 300, lr: float = 1e-2, weight_decay: float = 0.01, seed: int = 0,
                       batch_size: int = 256, log: Callable[[str], None] | None = None) -> list[float]:
    """Train ``model.location_map`` (+ its temperature): GeoCLIP features (N, 512) against the frozen unit
    image embeddings (N, 384) of the same places; symmetric InfoNCE, AdamW, cosine decay. Returns losses."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(np.asarray(location_feats, dtype=np.float32))
    y = torch.from_numpy(np.asarray(image_emb, dtype=np.float32))

    def batches(epoch: int):  # a fresh random subset every step
        while True:
            yield torch.randperm(len(x), generator=gen)[:batch_size]

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        z = F.normalize(model.embed_location_features(x[idx]), dim=-1)
        return info_nce(z, y[idx], torch.eye(len(idx), dtype=torch.bool), capped_scale(model.location_logit_scale),
                        normalize=False, symmetric=True)

    params = list(model.location_map.parameters()) + [model.location_logit_scale]
    losses: list[float] = []
    run_epochs(optimizer([(params, lr)], weight_decay), {}, model.location_logit_scale, batches, loss_of, 1, steps,
               min(20, steps // 10 + 1), log=log, log_every=max(1, steps // 4), label="location map ",
               step_losses=losses)
    return losses


def place_embeddings(model: ProbeModel, places: Sequence[dict], directory: str | Path, name: str,
                     log: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probe image embeddings (N, 384), GeoCLIP features (N, 512)) of places (image [+ box], lat, lon)."""
    feats = image_feature_cache(model, [p["image"] for p in places], directory, name,
                                boxes=[p.get("box") for p in places], chunk=16, log=log)
    img = embed_features(model.embed_image_features, feats)
    loc = model.location_features([p["lat"] for p in places], [p["lon"] for p in places]).cpu().numpy()
    return img, loc
