import torch
from torch import nn

from geovec.train.gradcache import gradcache_backward
from geovec.train.loss import info_nce


class TinyTower(nn.Module):
    """A small network with dropout, so replaying the RNG state matters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, 8))

    def forward(self, xs):
        return self.net(torch.stack(list(xs)))


def test_gradcache_gradients_equal_full_batch_step():
    torch.manual_seed(0)
    model = TinyTower().train()
    queries = list(torch.randn(12, 10))
    cands = list(torch.randn(15, 10))
    pos = torch.zeros(12, 15, dtype=torch.bool)
    pos[torch.arange(12), torch.arange(12)] = True
    pos[0, 13] = True  # a second positive; 12 and 14 are hard negatives
    loss_fn = lambda q, c: info_nce(q, c, pos, 20.0, symmetric=True)

    torch.manual_seed(123)
    rng = torch.get_rng_state()
    model.zero_grad()
    # reference: same RNG stream per forward as GradCache uses (queries first, then candidates)
    q_full = model(queries)
    c_full = model(cands)
    ref_loss = loss_fn(q_full, c_full)
    ref_loss.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}

    torch.set_rng_state(rng)
    model.zero_grad()
    loss = gradcache_backward(model, [queries, cands], loss_fn, chunk_size=0)  # one chunk per group
    assert torch.allclose(loss, ref_loss.detach(), atol=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, ref[n], atol=1e-5), n


def test_gradcache_chunked_equals_full_batch_without_dropout():
    torch.manual_seed(0)
    model = TinyTower().eval()  # chunking changes the dropout draw, so compare without dropout
    queries, cands = list(torch.randn(9, 10)), list(torch.randn(9, 10))
    pos = torch.eye(9, dtype=torch.bool)
    loss_fn = lambda q, c: info_nce(q, c, pos, 20.0, symmetric=True)
    model.zero_grad()
    full = loss_fn(model(queries), model(cands))
    full.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    loss = gradcache_backward(model, [queries, cands], loss_fn, chunk_size=2)
    assert torch.allclose(loss, full.detach(), atol=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, ref[n], atol=1e-5), n


def test_gradcache_replays_dropout_masks_per_chunk():
    torch.manual_seed(0)
    model = TinyTower().train()
    queries, cands = list(torch.randn(8, 10)), list(torch.randn(8, 10))
    pos = torch.eye(8, dtype=torch.bool)
    seen = []

    def loss_fn(q, c):
        seen.append((q.detach().clone(), c.detach().clone()))
        return info_nce(q, c, pos, 20.0, symmetric=True)

    def embed(chunk):
        out = model(chunk)
        if torch.is_grad_enabled():
            replays.append(out.detach().clone())
        return out

    replays = []
    gradcache_backward(embed, [queries, cands], loss_fn, chunk_size=3)
    cached_q, cached_c = seen[0]
    assert torch.allclose(torch.cat(replays[:3]), cached_q)  # replayed forward == cached forward (same masks)
    assert torch.allclose(torch.cat(replays[3:]), cached_c)
