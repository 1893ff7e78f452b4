"""Two CPU processes (gloo): gathered negatives with the local gradient kept give full-batch gradients."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from geovec.train import distributed as ddp
from geovec.train.loss import info_nce


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 4))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _model()
        q, c = _data()
        per = q.shape[0] // world
        sl = slice(rank * per, (rank + 1) * per)
        qg = ddp.gather_keep_grad(model(q[sl]))
        cg = ddp.gather_keep_grad(model(c[sl]))
        assert qg.shape == (8, 4) and qg.requires_grad
        loss = info_nce(qg, cg, torch.eye(8, dtype=torch.bool), 10.0, symmetric=True) * ddp.world_size()
        loss.backward()
        ddp.all_reduce_grads(list(model.parameters()))
        torch.save({n: p.grad for n, p in model.named_parameters()}, os.path.join(out_dir, f"grads{rank}.pt"))
        keys = ddp.gather_objects([f"k{rank}"])
        assert keys == [["k0"], ["k1"]]
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gather_keeps_local_gradient_and_matches_full_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model = _model()
    q, c = _data()
    info_nce(model(q), model(c), torch.eye(8, dtype=torch.bool), 10.0, symmetric=True).backward()
    for rank in (0, 1):
        grads = torch.load(tmp_path / f"grads{rank}.pt")
        for n, p in model.named_parameters():
            assert torch.allclose(grads[n], p.grad, atol=1e-6), (rank, n)


def test_single_process_helpers_are_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert ddp.gather_keep_grad(x) is x
    assert ddp.world_size() == 1 and ddp.rank() == 0
    assert ddp.gather_objects("a") == ["a"]
