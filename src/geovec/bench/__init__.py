"""RSMEB: the remote-sensing multimodal embedding benchmark (task registry, dataset loaders, mosaics,
metrics, cached runner and reports). ``geovec bench --suite rsmeb-dev`` runs it from the command line::

    from geovec.bench import load_encoder, run_benchmark, tasks_in, RunConfig
    enc = load_encoder("geovec-compact")
    run_benchmark(tasks_in("rsmeb-dev"), enc, RunConfig(data_root="../shared/data", out_dir="results"))
"""

from geovec._lazy import lazy_exports

__all__ = [
    "META_TASKS", "SUITES", "TASKS", "BenchEncoder", "ChanceEncoder", "OpenCLIPAdapter", "RunConfig", "TaskSpec",
    "get_task", "load_encoder", "run_benchmark", "run_task", "tasks_in",
]
__getattr__, __dir__ = lazy_exports(__name__, {
    "BenchEncoder": "geovec.bench.encoders", "ChanceEncoder": "geovec.bench.encoders",
    "OpenCLIPAdapter": "geovec.bench.encoders", "load_encoder": "geovec.bench.encoders",
    "RunConfig": "geovec.bench.runner", "run_benchmark": "geovec.bench.runner", "run_task": "geovec.bench.runner",
    "META_TASKS": "geovec.bench.tasks", "SUITES": "geovec.bench.tasks", "TASKS": "geovec.bench.tasks",
    "TaskSpec": "geovec.bench.tasks", "get_task": "geovec.bench.tasks", "tasks_in": "geovec.bench.tasks",
})
