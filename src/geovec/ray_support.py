"""What every geovec job on Ray shares: starting Ray, sizing the actor pool, and one ``map_batches`` run of
an actor class over rows, written as parquet shards.

Low-level on purpose: :mod:`geovec.embed.ray_embed` (``geovec embed --ray``: generic items) and
:mod:`geovec.index.ray_runner` (``geovec index build --ray``: chips) both build on it, and it imports
neither. Workers must see the same file paths as the driver (shared or identical file system) and have geovec
installed. ``address``: ``"local"`` starts (or reuses) a local Ray instance, anything else is passed to
``ray.init(address=...)`` (``"auto"``, ``"ray://head:10001"``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

ModelFactory = Callable[[], Any]  # picklable, zero arguments: what each actor calls once to load its model


def model_factory_for(model_id: str | None) -> ModelFactory:
    """Default actor factory: load the same named model (``geovec.load_model(model_id)``)."""
    import geovec

    return partial(geovec.load_model, model_id)


def init_ray(address: str | None = "local", num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address in (None, "", "local"):
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False)


def actor_cpus(concurrency: int, requested: float | None) -> float:
    """CPUs per actor: as requested, else a share that leaves one CPU of the cluster for the read and
    write tasks (actors that take every CPU would starve them: the job would never finish)."""
    import ray

    if requested is not None:
        return requested
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.25, min(1.0, (total - 1.0) / max(1, concurrency)))


def map_to_shards(rows: Sequence[dict], actor: type, actor_kwargs: dict, out_dir: str | Path, *,
                  batch_format: str, address: str | None = "local", concurrency: int = 2,
                  num_cpus_per_actor: float | None = None, num_gpus_per_actor: float = 0,
                  rows_per_task: int = 256) -> list[Path]:
    """Run ``actor(**actor_kwargs)`` (a pool of ``concurrency`` actors, each constructed once) over ``rows``
    in blocks of ``rows_per_task``; write its output batches as parquet to ``out_dir`` and return the paths
    of the shards this run wrote (shards already there are left alone)."""
    import ray.data

    init_ray(address)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = ray.data.from_items(list(rows), override_num_blocks=max(1, -(-len(rows) // rows_per_task)))
    ds = ds.map_batches(actor, fn_constructor_kwargs=actor_kwargs, batch_size=rows_per_task,
                        batch_format=batch_format, concurrency=concurrency,
                        num_cpus=actor_cpus(concurrency, num_cpus_per_actor), num_gpus=num_gpus_per_actor)
    before = set(out_dir.glob("*.parquet"))
    ds.write_parquet(str(out_dir))
    return sorted(set(out_dir.glob("*.parquet")) - before)
