"""`python -m rexlib pretrain`: flags (one per `PretrainConfig` field) -> `pretrain`."""

from __future__ import annotations

import argparse

from rexlib.options import add_flags, flag_values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rexlib.pretraining.loop import PretrainConfig

    add_flags(parser, PretrainConfig)


def run(args: argparse.Namespace) -> int:
    from rexlib.pretraining.loop import PretrainConfig, pretrain

    pretrain(PretrainConfig(**flag_values(PretrainConfig, args)))
    return 0
