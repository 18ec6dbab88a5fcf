"""`python -m rexlib <command>`: one entry point, one module per command.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
the module is imported only when its command runs, so `build-world` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build-world": ("rexlib.world.cli", "write the embedded GQA-format synthetic world"),
    "grow-world": ("rexlib.world.grow", "more training images for a world, the same val and testdev"),
    "build": ("rexlib.dataset.build", "execute programs and write the GQA-REX dataset"),
    "merge": ("rexlib.dataset.merge", "join the shards of a sharded build"),
    "import-release": ("rexlib.dataset.release", "use the official GQA-REX json files instead of building"),
    "pretrain": ("rexlib.pretraining.cli", "pretrain a small VisualBERT on scene-graph captions"),
    "train": ("rexlib.training.cli", "train REX or the baseline"),
    "evaluate": ("rexlib.evaluation.evaluate", "decode a split and compute every metric"),
    "submission": ("rexlib.evaluation.submission", "write GQA test-standard submission answers"),
    "run-notebooks": ("rexlib.notebook_support.runner", "execute the numbered notebooks with papermill"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rexlib", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="command")
    for name, (_module, help_text) in COMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    command_parser = argparse.ArgumentParser(prog=f"python -m rexlib {name}", description=COMMANDS[name][1])
    module.add_arguments(command_parser)
    return int(module.run(command_parser.parse_args(rest)) or 0)
