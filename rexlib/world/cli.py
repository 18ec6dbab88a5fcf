"""`python -m rexlib build-world`: write the embedded synthetic GQA world."""

from __future__ import annotations

import argparse
import time

from rexlib.world.build import WorldExistsError, build_world, format_counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="outputs/datasets/world", help="directory to write the world into")
    parser.add_argument("--images", type=int, default=2000, help="number of images (split 80/10/10)")
    parser.add_argument("--seed", type=int, default=0, help="the world's seed: same seed, same bytes")
    parser.add_argument("--feature-dim", type=int, default=256, help="dimension of each region feature")
    parser.add_argument("--no-images", action="store_true", help="skip the PNG pictures (for huge worlds)")
    parser.add_argument("--masks", action="store_true",
                        help="also write each picture's object mask, masks/{image_id}.png (0: background, k+1: k-th object)")
    parser.add_argument("--overwrite", action="store_true", help="replace a world built with other parameters")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        manifest = build_world(args.out, images=args.images, seed=args.seed, feature_dim=args.feature_dim,
                               render=not args.no_images, overwrite=args.overwrite, progress=not args.quiet,
                               masks=args.masks)
    except (WorldExistsError, ValueError) as error:
        print(f"build-world: {error}")
        return 1
    print(format_counts(manifest))
    print(f"world in {args.out} ({time.perf_counter() - started:.1f} s)")
    return 0
