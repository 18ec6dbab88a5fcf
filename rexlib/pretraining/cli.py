"""`python -m rexlib pretrain`: flags -> `PretrainConfig` -> `pretrain`."""

from __future__ import annotations

import argparse
import dataclasses

from rexlib.pretraining.loop import PretrainConfig, pretrain

HELP = {
    "gqa": "GQA-layout folder (sceneGraphs/)", "store": "GQA-REX store (regions, vocab.json)",
    "out": "output directory, e.g. weights/visualbert-world-tiny",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(PretrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.default is dataclasses.MISSING:
            parser.add_argument(flag, required=True, help=HELP.get(field.name))
        elif isinstance(field.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default,
                                help=f"default {field.default}")


def run(args: argparse.Namespace) -> int:
    pretrain(PretrainConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(PretrainConfig)}))
    return 0
