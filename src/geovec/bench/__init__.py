"""RSMEB: the remote-sensing multimodal embedding benchmark (task registry, dataset loaders, mosaics,
metrics, cached runner and reports). ``geovec bench --suite rsmeb-dev`` runs it from the command line::

    from geovec.bench import load_encoder, run_benchmark, tasks_in, RunConfig
    enc = load_encoder("geovec-compact")
    run_benchmark(tasks_in("rsmeb-dev"), enc, RunConfig(data_root="../shared/data", out_dir="results"))
"""

from geovec.bench.encoders import BenchEncoder, ChanceEncoder, OpenCLIPAdapter, load_encoder
from geovec.bench.runner import RunConfig, run_benchmark, run_task
from geovec.bench.tasks import META_TASKS, SUITES, TASKS, TaskSpec, get_task, tasks_in

__all__ = [
    "META_TASKS", "SUITES", "TASKS", "BenchEncoder", "ChanceEncoder", "OpenCLIPAdapter", "RunConfig", "TaskSpec",
    "get_task", "load_encoder", "run_benchmark", "run_task", "tasks_in",
]
