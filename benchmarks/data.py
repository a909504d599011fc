"""What each way of holding images costs: today's float32 in memory vs uint8, lazy, archive.

Two generated data sets (written once into a temporary folder): ``--n-png`` PNGs of 64x64 RGB
and ``--n-jpeg`` JPEGs of 256x256 RGB (smooth gradients plus noise, so they compress like
photos rather than like pure noise). For each data set and each source

- float32:  every file decoded up front into one float32 tensor (gankit before uint8 storage;
            the baseline),
- uint8:    decoded up front into uint8 (``--data-mode memory``),
- lazy:     decoded per batch in the loader (``--data-mode lazy``),
- shards:   ``gankit prepare``'s default archive, read per batch with one pread per image,
- zip:      ``gankit prepare --format zip`` (PNGs in a zip), read per batch,

and each number of loader workers (0, 1, 2), one fresh subprocess measures: the time to the
first batch (loading included), steady images/s over ``--seconds`` after it (batches of 64,
turned into float in [-1, 1] as training would use them), the peak RSS of the main process
(``VmHWM``, its own address space only) and what the workers add (their summed PSS at the end
of the window: pages they share with the main process, such as an in-memory data set they
inherited, count once, split between the sharers). Lazy and archive sources are also measured
on a quarter of each data set: their memory should not grow with its size. Run:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/data.py            # the README figures
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/data.py --n-png 2000 --n-jpeg 200 --seconds 2

``--data-dir DIR`` keeps the generated images and archives in DIR (made on the first run,
reused after) instead of a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 64


def make_images(root: Path, n: int, size: int, suffix: str, seed: int) -> None:
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    for i in range(n):
        a, b, c = rng.uniform(0, 255, 3)
        base = a * ramp[None, :, None] + b * ramp[:, None, None] + c * 0.3
        img = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        kwargs = {"quality": 90} if suffix == ".jpg" else {}
        Image.fromarray(img).save(root / f"{i:06d}{suffix}", **kwargs)


def subset(src: Path, dst: Path, n: int) -> None:
    dst.mkdir()
    for f in sorted(src.iterdir())[:n]:
        os.link(f, dst / f.name)


# ------------------------------------------------------------------- one measurement (child)


def _status_mb(pid: int | str, field: str, name: str = "status") -> float:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(spec: str, source: str, workers: int, seconds: float) -> dict[str, Any]:
    import torch

    from gankit.data import ArrayDataset, load_dataset, make_loader, to_unit

    base_rss = _status_mb("self", "VmHWM")
    t0 = time.perf_counter()
    mode = {"float32": "memory", "uint8": "memory", "lazy": "lazy"}.get(source, "auto")
    ds = load_dataset(spec, "train", mode=mode)
    if source == "float32":  # what every image source returned before uint8 storage
        ds = ArrayDataset(x=to_unit(ds.x), y=ds.y, name=ds.name, low=0.0, high=255.0)
        assert ds.x.dtype == torch.float32
    loader = make_loader(ds, BATCH, seed=0, num_workers=workers)
    it = iter(loader)
    first = next(it)
    first_s = time.perf_counter() - t0
    assert first.dtype == torch.float32
    n, start = 0, time.perf_counter()
    epoch = 0
    while time.perf_counter() - start < seconds:
        try:
            n += len(next(it))
        except StopIteration:
            epoch += 1
            loader.set_epoch(epoch)
            it = iter(loader)
    rate = n / (time.perf_counter() - start)
    pids = [w.pid for w in getattr(loader._iterator, "_workers", [])] if workers else []
    # What one worker can deliver: the source's own batched read (uint8, no loader, no
    # float conversion, which training does on its device).
    source_rate = float("nan")
    if workers == 0:
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1)).tolist()
        m, k, t = 0, 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            batch = order[k:k + BATCH] if k + BATCH <= len(order) else order[:BATCH]
            k = k + BATCH if k + BATCH <= len(order) else 0
            got = ds.__getitems__(batch)
            m += len(got[0] if isinstance(got, tuple) else got)
        source_rate = m / (time.perf_counter() - t)
    worker_pss = sum(_status_mb(pid, "Pss", "smaps_rollup") for pid in pids)
    return {
        "first_batch_s": first_s,
        "images_per_s": rate,
        "source_images_per_s": source_rate,
        "rss_mb": _status_mb("self", "VmHWM"),
        "base_rss_mb": base_rss,
        "worker_rss_mb": worker_pss,
        "train_images": len(ds),
    }


def run_child(spec: str, source: str, workers: int, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", json.dumps([spec, source, workers, seconds])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measurement {source} {spec} w={workers} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ the report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-png", type=int, default=20_000)
    ap.add_argument("--n-jpeg", type=int, default=2_000)
    ap.add_argument("--seconds", type=float, default=4.0, help="steady-rate window")
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--data-dir", help="keep (and reuse) the generated data here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return

    from gankit.data import prepare_folder

    workers = [int(w) for w in args.workers.split(",")]
    tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="gankit-data-bench-"))
    try:
        sets = [("png64", args.n_png, 64, ".png"), ("jpeg256", args.n_jpeg, 256, ".jpg")]
        for name, n, size, suffix in sets:
            if (tmp / f"{name}-quarter").is_dir():
                print(f"# reusing {tmp / name}", flush=True)
                continue
            t = time.perf_counter()
            make_images(tmp / name, n, size, suffix, seed=len(name))
            subset(tmp / name, tmp / f"{name}-quarter", n // 4)
            print(f"# generated {n} {suffix} images of {size}x{size} in "
                  f"{time.perf_counter() - t:.0f} s", flush=True)
        rows = []
        for name, n, _size, _ in sets:
            folder = tmp / name
            prep: dict[str, float] = {}
            for fmt, out in (("shards", tmp / f"{name}.shards"), ("zip", tmp / f"{name}.zip")):
                if out.exists():
                    continue
                t = time.perf_counter()
                info = prepare_folder(folder, out, workers=2, fmt=fmt, progress=False)
                prep[fmt] = time.perf_counter() - t
                print(f"# gankit prepare {name} --format {fmt} --workers 2: "
                      f"{prep[fmt]:.1f} s, {info['bytes'] / 2**20:.0f} MiB", flush=True)
            quarter = tmp / f"{name}-quarter.shards"
            if not quarter.exists():
                prepare_folder(tmp / f"{name}-quarter", quarter, workers=2, progress=False)
            specs = {"float32": f"folder:{folder}", "uint8": f"folder:{folder}",
                     "lazy": f"folder:{folder}", "shards": f"shards:{tmp / name}.shards",
                     "zip": f"zip:{tmp / name}.zip"}
            for source, spec in specs.items():
                for w in workers:
                    r = run_child(spec, source, w, args.seconds)
                    rows.append({"set": name, "n": n, "source": source, "workers": w, **r})
                    _print_row(rows[-1])
            for source, spec in (("lazy", f"folder:{tmp / name}-quarter"),
                                 ("shards", f"shards:{quarter}")):
                r = run_child(spec, source, 1, args.seconds)
                rows.append({"set": name, "n": n // 4, "source": source, "workers": 1, **r})
                _print_row(rows[-1])
        _summary(rows)
    finally:
        if not args.data_dir:
            shutil.rmtree(tmp, ignore_errors=True)


def _print_row(r: dict[str, Any]) -> None:
    src = "" if r["workers"] else f" (source alone {r['source_images_per_s']:.0f})"
    print(f"{r['set']:<8} n={r['n']:<6} {r['source']:<8} workers={r['workers']}  first batch "
          f"{r['first_batch_s']:7.2f} s  {r['images_per_s']:6.0f} img/s{src}  peak RSS "
          f"{r['rss_mb']:6.0f} MB (after imports {r['base_rss_mb']:.0f}) + workers' PSS "
          f"{r['worker_rss_mb']:.0f} MB", flush=True)


def _summary(rows: list[dict[str, Any]]) -> None:
    def get(s: str, src: str, w: int, n: int | None = None) -> dict[str, Any]:
        return next(r for r in rows if r["set"] == s and r["source"] == src
                    and r["workers"] == w and (n is None or r["n"] == n))

    print("\n# against the float32 baseline (same data, same run)")
    for s in sorted({r["set"] for r in rows}):
        n = max(r["n"] for r in rows if r["set"] == s)
        base = get(s, "float32", 0)
        for src in ("uint8", "lazy", "shards", "zip"):
            r = get(s, src, 0)
            print(f"{s:<8} {src:<7} (0 workers): peak RSS {r['rss_mb'] / base['rss_mb']:.2f}x, "
                  f"first batch {r['first_batch_s'] / base['first_batch_s']:.2f}x of float32's")
        for w in (0, 1):
            lazy, arc = get(s, "lazy", w, n), get(s, "shards", w, n)
            print(f"{s:<8} shards vs lazy folder, {w} worker(s): "
                  f"{arc['images_per_s'] / lazy['images_per_s']:.1f}x the images/s")
        lazy, arc = get(s, "lazy", 0, n), get(s, "shards", 0, n)
        print(f"{s:<8} shards vs lazy folder, one process reading uint8 batches (per worker): "
              f"{arc['source_images_per_s'] / lazy['source_images_per_s']:.1f}x")
        for src in ("lazy", "shards"):
            big, small = get(s, src, 1, n), get(s, src, 1, n // 4)
            print(f"{s:<8} {src:<7} peak RSS at {n} vs {n // 4} images (1 worker): main "
                  f"{big['rss_mb']:.0f} vs {small['rss_mb']:.0f} MB, worker PSS "
                  f"{big['worker_rss_mb']:.0f} vs {small['worker_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
