"""`python -m rexlib train`: flags -> `rexlib.training.config.TrainConfig` -> `rexlib.training.loop.train`.

Every flag is made from a TrainConfig field (name, type, default, choices, help): see `rexlib.options`.
"""

from __future__ import annotations

import argparse
import json

from rexlib.options import add_flags, flag_values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rexlib.training.config import TrainConfig

    add_flags(parser, TrainConfig)


def config_from_args(args: argparse.Namespace):
    from rexlib.training.config import TrainConfig

    return TrainConfig(**flag_values(TrainConfig, args))


def run(args: argparse.Namespace) -> int:
    from rexlib.training.loop import train

    summary = train(config_from_args(args))
    if summary.get("global_step") is not None:
        print(json.dumps(summary, indent=2, default=str))
    return 0
