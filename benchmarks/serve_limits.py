"""What an over-long input costs the server: one ~10 MB text to ``/v1/embeddings`` (refused, and with
``"truncate": true``), against a one-sentence request in the same process (the baseline), with the bundled model.

    python benchmarks/serve_limits.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json
import resource
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "serve_limits.json"


def timed(client, body) -> tuple[float, object]:
    t = time.perf_counter()
    r = client.post("/v1/embeddings", json=body)
    return time.perf_counter() - t, r


def main():
    from fastapi.testclient import TestClient

    import geovec
    from geovec.serve.app import create_app

    model = geovec.load_model()
    client = TestClient(create_app(None, model))
    sentence = "solar farm next to a river"
    huge = (sentence + " ") * (10_000_000 // (len(sentence) + 1))
    timed(client, {"input": sentence})  # warm-up
    base_s, _ = timed(client, {"input": sentence})
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused_s, refused = timed(client, {"input": huge})
    truncated_s, truncated = timed(client, {"input": huge, "truncate": True})
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    result = {"model": model.model_id, "text_chars": len(huge),
              "baseline_one_sentence_s": round(base_s, 3),
              "refused": {"status": refused.status_code, "code": refused.json()["error"]["code"],
                          "seconds": round(refused_s, 3)},
              "truncated": {"status": truncated.status_code, "usage": truncated.json()["usage"],
                            "seconds": round(truncated_s, 3)},
              "peak_rss_growth_mib": round(grown, 1)}
    print(json.dumps(result, indent=2))
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
