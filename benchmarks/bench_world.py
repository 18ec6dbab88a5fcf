"""Time and memory of building the synthetic world.

    python benchmarks/bench_world.py                       # default world: 2,000 images with pictures
    python benchmarks/bench_world.py --images 100000 --no-images   # streaming check for a huge world

Prints images/s, questions/s and peak resident memory (this process, psutil and getrusage).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

from rexlib.world import build_world, format_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature-dim", type=int, default=256)
    parser.add_argument("--no-images", action="store_true")
    parser.add_argument("--out", default=None, help="where to build (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "world"
        started = time.perf_counter()
        manifest = build_world(out, images=args.images, seed=args.seed, feature_dim=args.feature_dim,
                               render=not args.no_images, overwrite=True, progress=sys.stderr.isatty())
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    total = manifest["counts"]["total"]
    print(format_counts(manifest))
    print(f"\nimages={total['images']} questions={total['questions']} render={not args.no_images} "
          f"feature_dim={args.feature_dim}")
    print(f"time {seconds:.1f} s | {total['images'] / seconds:.1f} images/s | "
          f"{total['questions'] / seconds:.0f} questions/s | on disk {size / 2**20:.0f} MiB")
    print(f"peak RSS {peak_kib / 1024:.0f} MiB (getrusage); RSS now {psutil.Process().memory_info().rss / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
