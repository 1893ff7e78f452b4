"""A quick dev evaluator used during training (the full benchmark is ``geovec bench``).

Built from the rsmeb-dev material only: the RSICD ``val`` carve-out, mosaics of val images, and RSVQA scenes
whose id is divisible by 5. Scores are percentages. Uses the feature cache so an evaluation costs only
encoder forward passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geovec.inputs import parse_item
from geovec.models.instructions import document_instruction
from geovec.train.converters import class_prompts
from geovec.train.geo import geo_crops, is_train_scene, read_geo_index
from geovec.train.mixture import rsicd_split
from geovec.train.mosaics import build_mosaics
from geovec.train.prepare import embed_items


def recall_at_k(scores: torch.Tensor, gold: list[set[int]], ks=(1, 5, 10)) -> dict[str, float]:
    """scores (Q, N); gold[i] = indices of correct candidates -> {"R@k": percent of queries with a hit in top k}."""
    top = scores.topk(max(ks), dim=1).indices.tolist()
    return {f"R@{k}": 100.0 * float(np.mean([bool(set(t[:k]) & g) for t, g in zip(top, gold)])) for k in ks}


def _items(raws, instruction_for):
    out = []
    for r in raws:
        it = parse_item(r)
        out.append(it.with_instruction(instruction_for(it)))
    return out


class DevEvaluator:
    """Callable ``(model) -> {metric: value}`` for the training loop."""

    def __init__(self, data_root: str | Path, work_dir: str | Path, cache=None, limit: int = 0,
                 mosaics: int = 40, tasks=("retrieval", "classification", "region", "geo")):
        self.cache, self.tasks = cache, tasks
        self.embed_fn = None  # set to the trainer's embed (text cache) to share pooled text states
        val = rsicd_split(data_root, "val")
        if limit:
            val = val[:limit]
        self.val = val
        work = Path(work_dir)
        self.mosaics = build_mosaics(rsicd_split(data_root, "val"), work / "val_mosaics", mosaics, seed=12345) \
            if "region" in tasks else []
        self.geo = [r for r in read_geo_index(data_root) if not is_train_scene(r)] if "geo" in tasks else []
        self.geo_places = geo_crops(self.geo, work / "test_geo_crops", 0) if self.geo else []

    def image_paths(self) -> list[str]:
        return [p for p, _, _ in self.val] + [m.path for m in self.mosaics] + [p["image"] for p in self.geo_places]

    def __call__(self, model) -> dict:
        out: dict[str, float] = {}
        q_instr = lambda task: (lambda it: model.query_instruction(task))
        d_instr = lambda it: document_instruction(it.order)
        embed = lambda items: embed_items(model, items, self.cache, embed_fn=self.embed_fn)
        if "retrieval" in self.tasks or "classification" in self.tasks:
            img_raw = [{"image": p} for p, _, _ in self.val]
        if "retrieval" in self.tasks:
            caps = [(i, c) for i, (_, cs, _) in enumerate(self.val) for c in cs if c.strip(" .")]
            img_q = embed(_items(img_raw, q_instr("retrieval")))
            img_d = embed(_items(img_raw, d_instr))
            txt_q = embed(_items([{"text": c} for _, c in caps], q_instr("retrieval")))
            txt_d = embed(_items([{"text": c} for _, c in caps], d_instr))
            owner = [i for i, _ in caps]
            gold_i2t = [set() for _ in self.val]
            for j, i in enumerate(owner):
                gold_i2t[i].add(j)
            i2t = recall_at_k(img_q @ txt_d.T, gold_i2t)
            t2i = recall_at_k(txt_q @ img_d.T, [{i} for i in owner])
            out.update({f"rsicd_i2t_{k}": v for k, v in i2t.items()})
            out.update({f"rsicd_t2i_{k}": v for k, v in t2i.items()})
            out["rsicd_mR"] = float(np.mean(list(i2t.values()) + list(t2i.values())))
        if "classification" in self.tasks:
            labelled = [(k, l) for k, (_, _, l) in enumerate(self.val) if l]
            names = sorted({l for _, l in labelled})
            img_c = embed(_items([img_raw[k] for k, _ in labelled], q_instr("classification")))
            nm = embed(_items([{"text": class_prompts(n)[0]} for n in names], d_instr))
            pred = (img_c @ nm.T).argmax(1).tolist()
            out["rsicd_cls_P@1"] = 100.0 * float(np.mean([names[p] == l for p, (_, l) in zip(pred, labelled)]))
        if "region" in self.tasks and self.mosaics:
            regions = [(m, r) for m in self.mosaics for r in m.regions if r.captions and r.captions[0].strip(" .")]
            rq = embed(_items([{"image": m.path, "box": list(r.box)} for m, r in regions], q_instr("region")))
            rc = embed(_items([{"text": r.captions[0]} for _, r in regions], d_instr))
            out["region_caption_P@1"] = recall_at_k(rq @ rc.T, [{i} for i in range(len(regions))], (1,))["R@1"]
            eq = embed(_items([{"image": m.path, "text": r.captions[0]} for m, r in regions], q_instr("region")))
            ed = embed(_items([{"image": m.path, "box": list(r.box)} for m, r in regions], d_instr))
            s = eq @ ed.T
            same = torch.tensor([[m1.path == m2.path for m2, _ in regions] for m1, _ in regions])
            out["refexp_all_P@1"] = recall_at_k(s, [{i} for i in range(len(regions))], (1,))["R@1"]
            out["refexp_within_P@1"] = recall_at_k(s.masked_fill(~same, -9.0), [{i} for i in range(len(regions))],
                                                   (1,))["R@1"]
            out["refexp_within_chance"] = 100.0 * float(np.mean([1.0 / same[i].sum().item() for i in range(len(regions))]))
        if "geo" in self.tasks and self.geo_places:
            pl = self.geo_places
            gi = embed(_items([{"image": p["image"]} for p in pl], q_instr("geo")))
            gl = embed(_items([{"lat": p["lat"], "lon": p["lon"]} for p in pl], d_instr))
            out["geo_img2loc_P@1"] = recall_at_k(gi @ gl.T, [{i} for i in range(len(pl))], (1,))["R@1"]
            tq = embed(_items([{"text": "remote sensing image", "lat": p["lat"], "lon": p["lon"]} for p in pl],
                              q_instr("geo")))
            td = embed(_items([{"image": p["image"], "lat": p["lat"], "lon": p["lon"]} for p in pl], d_instr))
            out["geo_textloc2img_P@1"] = recall_at_k(tq @ td.T, [{i} for i in range(len(pl))], (1,))["R@1"]
            out["geo_chance"] = 100.0 / len(pl)
        return out
