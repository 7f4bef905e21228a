#!/usr/bin/env python3
"""The 2D Statistical Cell models in PyTorch, as a timing peer for bench/train.ts.

Built from /work/shared/docs/statistical-cell.md §1-2 (not from the models/*.vae files, so the
parameter count checks that both describe the same network): residual Down/Up blocks, spectral
norm (one power iteration, dim 0, also for conv-transpose) on every conv/conv-transpose/linear,
BatchNorm (eps 1e-5, momentum 0.1), conditioning paths conv1x1 -> BN -> ReLU, Softplus last;
the beta-sweep loss 2((1-b)R + bK) and Adam(lr 2e-4, betas (0.9, 0.999), eps 1e-8).

A timed step is what ModelRuntime.trainStep does: forward, loss, backward, Adam, and reading
the three metrics back (.item()). Prints one JSON object per (model, batch, threads) on stdout.

usage: python3 bench/peers/torch_statcell.py [--models reference2d,target2d] [--batches 8,32]
                                              [--threads 1,2] [--warmup 2] [--min-reps 3]
                                              [--max-reps 7] [--budget-s 30] [--count-only]
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

PARAMS = {"reference2d": 22_279_054, "target2d": 22_325_495}  # statistical-cell.md §1.7
SIZE = (160, 96)
CHANNELS = [32, 64, 128, 256, 512]
LATENT = 512
CLASSES = 24
REF_CHANNELS = 2


def sn(layer):
    # dim 0 even for ConvTranspose (whose weight is [in, out, k, k]); PyTorch's default there is 1.
    return spectral_norm(layer, dim=0)


class Cond(nn.Module):
    """conv 1x1 -> BatchNorm -> ReLU from a condition's channels to cout."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = sn(nn.Conv2d(cin, cout, 1))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, c):
        return F.relu(self.bn(self.conv(c)))


class Block(nn.Module):
    """Residual Down (up=False) or Up (up=True) block, statistical-cell.md §1.1-1.2."""

    def __init__(self, cin, cout, up, conditioned, act="relu"):
        super().__init__()
        self.up, self.act = up, act
        self.bypass = sn(nn.Conv2d(cin, cout, 1))
        # The first conv keeps cin channels.
        self.conv1 = sn(nn.ConvTranspose2d(cin, cin, 4, 2, 1) if up else nn.Conv2d(cin, cin, 4, 2, 1))
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.bn2 = nn.BatchNorm2d(cout)
        if conditioned:
            self.cond_ref = Cond(REF_CHANNELS, cout)
            self.cond_class = Cond(CLASSES, cout)

    def forward(self, x, ref=None, cls=None):
        if self.up:
            skip = F.interpolate(self.bypass(x), scale_factor=2, mode="nearest")
        else:
            skip = self.bypass(F.avg_pool2d(x, 2))
        main = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = skip + main
        if ref is not None:
            y = y + self.cond_ref(ref)
        if cls is not None:
            y = y + self.cond_class(cls[:, :, None, None])  # broadcast over every pixel
        return F.softplus(y) if self.act == "softplus" else F.relu(y)


class StatCell(nn.Module):
    def __init__(self, n_in, conditioned):
        super().__init__()
        self.conditioned = conditioned
        chans = [n_in] + CHANNELS
        self.down = nn.ModuleList(Block(chans[i], chans[i + 1], False, conditioned) for i in range(5))
        self.base = (SIZE[0] // 32, SIZE[1] // 32)
        flat = CHANNELS[-1] * self.base[0] * self.base[1]
        self.fc_mu = sn(nn.Linear(flat, LATENT))
        self.fc_logvar = sn(nn.Linear(flat, LATENT))
        self.fc = sn(nn.Linear(LATENT, flat))
        self.bn0 = nn.BatchNorm2d(CHANNELS[-1])
        outs = CHANNELS[-2::-1] + [n_in]  # 256, 128, 64, 32, n_in
        ins = CHANNELS[::-1]  # 512, 256, 128, 64, 32
        self.up = nn.ModuleList(
            Block(ins[i], outs[i], True, conditioned, "softplus" if i == 4 else "relu") for i in range(5)
        )

    def forward(self, x, ref=None, cls=None):
        h = x
        for i, blk in enumerate(self.down):
            s = 2 ** (i + 1)
            h = blk(h, ref[:, :, ::s, ::s] if ref is not None else None, cls)
        f = h.flatten(1)
        mu, logvar = self.fc_mu(f), self.fc_logvar(f)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h = F.relu(self.bn0(self.fc(z).view(-1, CHANNELS[-1], *self.base)))
        for i, blk in enumerate(self.up):
            s = 2 ** (4 - i)
            h = blk(h, ref[:, :, ::s, ::s] if ref is not None else None, cls)
        return h, mu, logvar


def make(name):
    if name == "reference2d":
        return StatCell(2, False)
    if name == "target2d":
        return StatCell(1, True)
    raise SystemExit(f"torch_statcell: unknown model {name!r}; choose reference2d or target2d")


def count(model):
    return sum(p.numel() for p in model.parameters())


def inputs(name, batch, gen):
    n_in = 2 if name == "reference2d" else 1
    x = torch.rand(batch, n_in, *SIZE, generator=gen)
    if name == "reference2d":
        return x, None, None
    ref = torch.rand(batch, REF_CHANNELS, *SIZE, generator=gen)
    cls = F.one_hot(torch.arange(batch) % CLASSES, CLASSES).float()
    return x, ref, cls


def bench(name, batch, threads, a):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = make(name).train()
    params = count(model)
    if params != PARAMS[name]:
        raise SystemExit(f"torch_statcell: {name} has {params} parameters, statistical-cell.md says {PARAMS[name]}")
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    x, ref, cls = inputs(name, batch, torch.Generator().manual_seed(2))
    beta = 0.5

    def step():
        opt.zero_grad(set_to_none=True)
        xhat, mu, logvar = model(x, ref, cls)
        recon = ((xhat - x) ** 2).sum() / batch
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp())).sum() / batch
        loss = 2 * ((1 - beta) * recon + beta * kl)
        loss.backward()
        opt.step()
        return recon.item(), kl.item(), loss.item()

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        step()
    warm = time.perf_counter() - t0
    times = []
    start = time.perf_counter()
    while len(times) < a.min_reps or (len(times) < a.max_reps and time.perf_counter() - start < a.budget_s):
        t = time.perf_counter()
        metrics = step()
        times.append(time.perf_counter() - t)
        if not all(math.isfinite(m) for m in metrics):
            raise SystemExit(f"torch_statcell: {name} batch {batch}: non-finite metrics {metrics} at step {len(times)}")
    med = statistics.median(times)
    return {
        "engine": f"torch-{threads}t",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": name,
        "batch": batch,
        "params": params,
        "warmupS": round(warm, 3),
        "stepMs": [round(t * 1000, 1) for t in times],
        "medianMs": round(med * 1000, 1),
        "minMs": round(min(times) * 1000, 1),
        "imagesPerS": batch / med,
        "metrics": dict(zip(["recon", "kl", "loss"], metrics)),
        "loadavg": os.getloadavg(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="reference2d,target2d")
    p.add_argument("--batches", default="8,32")
    p.add_argument("--threads", default=f"1,{os.cpu_count()}")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-reps", type=int, default=3)
    p.add_argument("--max-reps", type=int, default=7)
    p.add_argument("--budget-s", type=float, default=30)
    p.add_argument("--count-only", action="store_true", help="print parameter counts and exit")
    a = p.parse_args()
    torch.set_num_interop_threads(1)
    models = a.models.split(",")
    if a.count_only:
        print(json.dumps({m: count(make(m)) for m in models}))
        return
    for m in models:
        for b in map(int, a.batches.split(",")):
            for t in map(int, a.threads.split(",")):
                print(json.dumps(bench(m, b, t, a)), flush=True)
                print(f"torch_statcell: {m} batch {b} threads {t} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
