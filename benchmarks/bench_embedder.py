"""Training and inference throughput of AMAESpectrumEmbedder vs a raw PyTorch loop.

Both train the same network (``--network``: the embedder's default
``AMAE1dModule``, the former 2-D default or the paper's ``AMAEModule``;
28x28 images, 12 classes) with the same loss (``AMAELoss``), optimizer
(AdamW, fused on CUDA), precision and batch size, on the same random uint8
sessions. The raw loop is what one would write by hand at its best: data
resident on the device, one ``randperm`` per epoch, batches gathered on the
device, channels-last on CUDA, no per-batch host synchronisation. Throughput
is samples per second from the MEDIAN epoch time of epochs 2..E (the first
epoch pays for cuDNN autotuning and compilation); the whole-``fit``
throughput of the embedder (data transfer, schedule, the attention-weights
pass) is printed beside it.

Transform throughput: ``emb.transform`` on host uint8 sessions (includes the
copies to and from the device) against the raw module's spectrum on
device-resident data, median over repeats.

RESULTS (one NVIDIA H100 80GB HBM3, torch 2.11, 65,536 sessions, 6 epochs,
``--network paper``; 2026-11-27)::

    config                raw s/s   emb s/s  ratio   fit s/s  transform/s  raw inf/s
    cuda bs=1024 fp32       72251     74607  1.033     71283       702616     762367
    cuda bs=4096 bf16      163686    165229  1.009    118886       843211     948844
    cuda bs=4096 bf16 c.   181913    179656  0.988     61763       747127     925598

On this project's shared 2-core CPU box (``--rounds 3``, 512 sessions, 3
epochs, batch 256 fp32): raw 82, embedder 82 samples/s (ratio 0.998);
transform 624 vs 646 sessions/s.  ("c." = ``torch.compile``; "fit s/s" is
the whole ``fit`` including the first epoch's cuDNN autotuning or
compilation, the copy to the device and the attention-weights pass.)
The default network (byte embeddings, mapper (1024, 256)) trained at
65-98k samples/s whole-fit at batch 1024 bf16 in the accuracy runs.

Run::

    python benchmarks/bench_embedder.py               # CPU and, if present, CUDA
    python benchmarks/bench_embedder.py --cuda-configs fp32,bf16,bf16c  # + compiled
"""

import argparse
import json
import math
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from sklearn_flowspectrum import (
    AMAE1dModule,
    AMAELoss,
    AMAEModule,
    AMAESpectrumEmbedder,
)

N_CLASSES = 12
# name -> (network class, its arguments).  "paper": the paper-shaped 2-D
# network (one-channel input, MLP mapper (256, 64)), the one measured on the
# H100 on 2026-11-27; "conv2d": AMAEModule's defaults (byte embeddings,
# softmax mapper on a (1024, 256) MLP), the embedder's default until the 1-D
# network replaced it; "default": the embedder's default, AMAE1dModule.
NETWORKS = {
    "paper": (
        AMAEModule,
        {"mapper": "mlp", "byte_embedding": 0, "mapper_hidden": (256, 64)},
    ),
    "conv2d": (AMAEModule, {}),
    "default": (AMAE1dModule, {}),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast(device, precision):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def raw_loop(X, y, device, epochs, batch_size, precision, compile_, network, lr=1e-3):
    """Hand-written training loop; returns per-epoch seconds."""
    torch.manual_seed(0)
    kind, kwargs = NETWORKS[network]
    module = kind(side=28, n_classes=N_CLASSES, **kwargs).to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    crit = AMAELoss().set_mapper(module.mapper_kind)
    kwargs = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(module.parameters(), lr=lr, **kwargs)
    step_module = torch.compile(module) if compile_ else module
    Xd = torch.from_numpy(X).view(-1, 1, 28, 28).to(device)
    yd = torch.from_numpy(y).to(device)
    n = len(Xd)
    total = epochs * math.ceil(n / batch_size)
    warm = max(1, int(0.05 * total))
    step = 0
    times = []
    module.train()
    for _ in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=device)
        losses = []
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            xb = Xd[idx].float().div_(255.0)
            with autocast(device, precision):
                out = step_module(xb)
                loss = crit(out, xb, yd[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # Same warm-up + cosine schedule as the embedder's default.
            step += 1
            f = (
                (step + 1) / (warm + 1)
                if step < warm
                else 0.5
                * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            )
            for g in opt.param_groups:
                g["lr"] = lr * f
            losses.append(loss.detach())
        torch.stack(losses).tolist()  # one sync per epoch, like the embedder
        sync(device)
        times.append(time.perf_counter() - t0)
    return times, module


def raw_inference(module, X, device, precision, batch_size, repeats):
    Xd = torch.from_numpy(X).view(-1, 1, 28, 28).to(device)
    module.eval()
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            outs = []
            for start in range(0, len(Xd), batch_size):
                xb = Xd[start : start + batch_size].float().div_(255.0)
                with autocast(device, precision):
                    outs.append(module.spectrum(xb).float())
            torch.cat(outs).cpu()
            sync(device)
            times.append(time.perf_counter() - t0)
    return times


def bench(
    device,
    n,
    epochs,
    batch_size,
    precision,
    compile_,
    repeats,
    infer_bs,
    network,
    rounds=1,
):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    y = rng.integers(0, N_CLASSES, size=n).astype(np.int64)
    label = f"{network} {device.type} bs={batch_size} {precision}"
    label += " compiled" if compile_ else ""

    # Alternate the two ``rounds`` times, so that drift in the machine's load
    # (a shared CPU box) hits both alike; epoch 1 of each fit is dropped.
    raw_times, emb_times, fit_s = [], [], []
    for _ in range(rounds):
        times, raw_module = raw_loop(
            X, y, device, epochs, batch_size, precision, compile_, network
        )
        raw_times += times[1:] or times
        kind, kwargs = NETWORKS[network]
        emb = AMAESpectrumEmbedder(
            module=kind,
            **{f"module__{k}": v for k, v in kwargs.items()},
            lr=1e-3,
            max_epochs=epochs,
            batch_size=batch_size,
            precision=precision,
            compile=compile_,
            device=device.type,
            inference_batch_size=infer_bs,
            random_state=0,
        )
        sync(device)
        t0 = time.perf_counter()
        emb.fit(X, y)
        sync(device)
        fit_s.append(time.perf_counter() - t0)
        dur = list(emb.history_[:, "dur"])
        emb_times += dur[1:] or dur

    raw_sps = n / statistics.median(raw_times)
    emb_sps = n / statistics.median(emb_times)
    fit_s = statistics.median(fit_s)
    row = {
        "config": label,
        "n": n,
        "epochs": epochs,
        "raw_samples_per_s": round(raw_sps),
        "embedder_samples_per_s": round(emb_sps),
        "ratio": round(emb_sps / raw_sps, 3),
        "embedder_whole_fit_samples_per_s": round(n * epochs / fit_s),
    }

    t_emb = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        emb.transform(X)
        t_emb.append(time.perf_counter() - t0)
    t_raw = raw_inference(raw_module, X, device, precision, infer_bs, repeats)
    row["transform_sessions_per_s"] = round(n / statistics.median(t_emb))
    row["raw_inference_sessions_per_s"] = round(n / statistics.median(t_raw))
    row["transform_ratio"] = round(
        row["transform_sessions_per_s"] / row["raw_inference_sessions_per_s"], 3
    )
    print(json.dumps(row), flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-n", type=int, default=512)
    p.add_argument("--cpu-epochs", type=int, default=3)
    p.add_argument("--cuda-n", type=int, default=65536)
    p.add_argument("--cuda-epochs", type=int, default=6)
    p.add_argument("--cuda-batch", type=int, default=4096)
    p.add_argument(
        "--cuda-configs",
        default="fp32,bf16",
        help="comma list of fp32 (batch 1024), bf16, bf16c (bf16 compiled)",
    )
    p.add_argument("--no-cpu", action="store_true")
    p.add_argument("--network", choices=sorted(NETWORKS), default="default")
    p.add_argument(
        "--rounds", type=int, default=2, help="alternating raw/embedder fits (CPU)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    rows = []
    if not args.no_cpu:
        rows.append(
            bench(
                torch.device("cpu"),
                args.cpu_n,
                args.cpu_epochs,
                256,
                "fp32",
                False,
                args.repeats,
                512,
                args.network,
                rounds=args.rounds,
            )
        )
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        print("device:", torch.cuda.get_device_name(), flush=True)
        settings = {
            "fp32": (1024, "fp32", False),
            "bf16": (args.cuda_batch, "bf16", False),
            "bf16c": (args.cuda_batch, "bf16", True),
        }
        for name in args.cuda_configs.split(","):
            bs, precision, compile_ = settings[name]
            rows.append(
                bench(
                    dev,
                    args.cuda_n,
                    args.cuda_epochs,
                    bs,
                    precision,
                    compile_,
                    args.repeats,
                    16384,
                    args.network,
                )
            )
    print()
    head = f"{'config':34s} {'raw s/s':>9s} {'emb s/s':>9s} {'ratio':>6s}"
    head += f" {'fit s/s':>9s} {'transform/s':>12s} {'raw inf/s':>10s}"
    print(head)
    for r in rows:
        print(
            f"{r['config']:34s} {r['raw_samples_per_s']:9d} "
            f"{r['embedder_samples_per_s']:9d} {r['ratio']:6.3f} "
            f"{r['embedder_whole_fit_samples_per_s']:9d} "
            f"{r['transform_sessions_per_s']:12d} "
            f"{r['raw_inference_sessions_per_s']:10d}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
