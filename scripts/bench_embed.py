"""Benchmark the embedder: inference blocks/s and x real time, eager vs torch.compile, and training blocks/s.

Usage: python scripts/bench_embed.py [--quick] [--json-out PATH] [--threads N] [--no-compile]

For both models (CRNN, Attention-CRNN; random weights, 20 singers: speed does not depend on
the weights) it embeds random log-mel blocks through ``Embedder`` (the path the vector
database uses) at several batch sizes, on this CPU and on CUDA when present; one block is
32 frames x 512 / 16000 Hz = 1.024 s of audio, so x real time = blocks/s x 1.024. It then
times training steps (forward, backward, Adam) at several batch sizes, in float32 and with
bfloat16 autocast (``singerid train --precision bf16``). Prints a table, writes
JSON, and prints a one-line JSON summary last (``x_real_time`` per model: best eager CPU figure
over the batch sizes; each figure is the best of several short timing windows, the median
beside it shows how much a shared machine took away).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from singerid.config import FeatureConfig, ModelConfig
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.embed import Embedder
from singerid.embedder.model import build_model

N_SINGERS = 20
KINDS = ("crnn", "attcrnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes and shorter timings (< 1 min)")
    parser.add_argument("--json-out", type=Path, default=Path("bench_embed.json"), help="where to write the JSON")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurements")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 1.5 if args.quick else 4.0
    infer_batches = (64, 256) if args.quick else (16, 64, 256, 1024)
    train_batches = (16, 32) if args.quick else (16, 32, 64, 128)
    compile_kinds = () if args.no_compile else (("attcrnn",) if args.quick else KINDS)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    block_seconds = FeatureConfig().block_seconds
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            model_dir = _random_model(Path(tmp) / kind, kind)
            for device in devices:
                emb = Embedder.load(model_dir, device=device)
                for bs in infer_batches:
                    rows.append(_time_embed(emb, kind, device, bs, "eager", seconds))
                if kind in compile_kinds:
                    started = time.perf_counter()
                    compiled = Embedder.load(model_dir, device=device, compile=True)
                    compiled.embed(_blocks(infer_batches[-1]), batch_size=infer_batches[-1])  # compile + warm up
                    warmup = time.perf_counter() - started
                    for bs in infer_batches[-1:]:
                        row = _time_embed(compiled, kind, device, bs, "compiled", seconds)
                        rows.append({**row, "compile_seconds": round(warmup, 1)})
            for device in devices:
                for bs in train_batches:
                    rows.append(_time_train(kind, device, bs, seconds, "fp32"))
                for bs in train_batches[:1] if device == "cpu" else ():
                    rows.append(_time_train(kind, device, bs, seconds, "bf16"))
    _print_table(rows)
    summary = _summary(rows, args.threads)
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                          "python": sys.version.split()[0]},
              "block_seconds": block_seconds, "rows": rows, "summary": summary}
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    print(json.dumps(summary))


def _random_model(model_dir: Path, kind: str) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, n_classes=N_SINGERS)
    model = build_model(cfg)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(_blocks(32)))  # realistic batch-norm statistics
    singers = tuple(f"singer{i:02d}" for i in range(N_SINGERS))
    card = ckpt.ModelCard(model_config=cfg, feature_config=FeatureConfig(), singers=singers, weights_sha256="")
    ckpt.save_model(model_dir, model.state_dict(), card)
    return model_dir


def _blocks(n: int, seed: int = 0) -> np.ndarray:
    """float32 (n, 128, 32) log-mel-like values (dB)."""
    return (np.random.default_rng(seed).standard_normal((n, 128, 32)) * 15 - 40).astype(np.float32)


def _measure(call, blocks_per_call: int, seconds: float, *, sync=None) -> tuple[float, float]:
    """(best, median) blocks/s over short windows: on a shared machine the best window shows what
    the code can do, the median what a busy machine gives."""
    windows = 3 if seconds < 2 else 5
    rates = []
    for _ in range(windows):
        done, started = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - started < seconds / windows:
            call()
            done += blocks_per_call
        if sync is not None:
            sync()
        rates.append(done / (time.perf_counter() - started))
    return max(rates), float(np.median(rates))


def _row(task: str, kind: str, device: str, mode: str, batch_size: int, rates: tuple[float, float]) -> dict:
    block_seconds = FeatureConfig().block_seconds
    best, median = rates
    return {"task": task, "model": kind, "device": device, "mode": mode, "batch_size": batch_size,
            "blocks_per_s": round(best, 1), "blocks_per_s_median": round(median, 1),
            "x_real_time": round(best * block_seconds, 1), "x_real_time_median": round(median * block_seconds, 1)}


def _time_embed(emb: Embedder, kind: str, device: str, batch_size: int, mode: str, seconds: float) -> dict:
    x = _blocks(max(batch_size, 256))
    emb.embed(x[:batch_size], batch_size=batch_size)  # warm-up
    rates = _measure(lambda: emb.embed(x, batch_size=batch_size), len(x), seconds)
    return _row("embed", kind, device, mode, batch_size, rates)


def _time_train(kind: str, device: str, batch_size: int, seconds: float, precision: str) -> dict:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, n_classes=N_SINGERS)).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(_blocks(batch_size)).to(device)
    y = torch.randint(0, N_SINGERS, (batch_size,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x).float()
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()

    for _ in range(3):  # kernel selection and Adam's state happen in the first steps
        step()
    rates = _measure(step, batch_size, seconds, sync=torch.cuda.synchronize if device == "cuda" else None)
    return _row("train", kind, device, precision, batch_size, rates)


def _print_table(rows: list[dict]) -> None:
    head = (f"{'task':<6} {'model':<8} {'device':<6} {'mode':<9} {'batch':>6} {'blocks/s':>10} {'median':>9} "
            f"{'x real time':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        extra = f"  (compile + warm-up {r['compile_seconds']} s)" if "compile_seconds" in r else ""
        print(f"{r['task']:<6} {r['model']:<8} {r['device']:<6} {r['mode']:<9} {r['batch_size']:>6} "
              f"{r['blocks_per_s']:>10,.1f} {r['blocks_per_s_median']:>9,.1f} {r['x_real_time']:>11,.1f}x{extra}")


def _summary(rows: list[dict], threads: int) -> dict:
    def best(**match: str) -> float:
        values = [r["x_real_time"] for r in rows if all(r.get(k) == v for k, v in match.items())]
        return max(values) if values else 0.0

    def best_rate(**match: str) -> float:
        values = [r["blocks_per_s"] for r in rows if all(r.get(k) == v for k, v in match.items())]
        return max(values) if values else 0.0

    def median(**match: str) -> float:
        values = [r["x_real_time_median"] for r in rows if all(r.get(k) == v for k, v in match.items())]
        return max(values) if values else 0.0

    summary = {"threads": threads,
               "x_real_time": {k: best(task="embed", model=k, device="cpu", mode="eager") for k in KINDS},
               "x_real_time_median": {k: median(task="embed", model=k, device="cpu", mode="eager") for k in KINDS},
               "x_real_time_compiled": {k: best(task="embed", model=k, device="cpu", mode="compiled") for k in KINDS},
               "train_blocks_per_s": {k: best_rate(task="train", model=k, device="cpu", mode="fp32") for k in KINDS},
               "train_blocks_per_s_bf16": {k: best_rate(task="train", model=k, device="cpu", mode="bf16")
                                           for k in KINDS}}
    if any(r["device"] == "cuda" for r in rows):
        summary["x_real_time_cuda"] = {k: best(task="embed", model=k, device="cuda", mode="eager") for k in KINDS}
        summary["train_blocks_per_s_cuda"] = {k: best_rate(task="train", model=k, device="cuda") for k in KINDS}
    return summary


if __name__ == "__main__":
    main()
