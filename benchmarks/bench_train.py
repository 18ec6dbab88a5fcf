"""Training, data-loading and decoding speed of the default recipe (what `make demo` trains) on CPU,
and the time the default recipe takes to reach an answer-accuracy target.

    python benchmarks/bench_train.py [--data DIR] [--batch-size 32] [--steps 20]
    python benchmarks/bench_train.py --data outputs/datasets/gqa-rex-demo --to-target 80 --epochs 2

Without --data it builds a fixture store (tests/store_fixture.py) in a temporary directory. REX and the
baseline are timed in alternating rounds in the same process, so the gate overhead ratio is not skewed
by whatever else the machine is doing; the median round counts. REX is also timed in fp32 in the same rounds,
so the speed-up of the recipe's precision (`--precision auto`: a bf16 backbone where the CPU has it) is a
ratio measured in the same run. `--to-target A` then trains the default
recipe (`python -m rexlib train` with no other flag, validating every `--val-every` steps) for `--epochs`
and prints the training time at which validation answer accuracy first reached A %, or the best reached.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from rexlib.model import REX, compute_losses
from rexlib.model.decoding import beam_search, greedy
from rexlib.model.pretrained import question_tokenizer
from rexlib.training.config import TrainConfig
from rexlib.training.data import REXDataset, collate, load_dataset_info, load_vocab
from rexlib.training.loop import autocast_for, build_model_config, train, uses_bf16

CPU = torch.device("cpu")


def training_round(model, optimizer, batches, precision: str) -> float:
    """Samples per second over `batches` (forward, losses, backward, clip, Adam) at a training precision."""
    model.train()
    started = time.perf_counter()
    samples = 0
    for batch in batches:
        with autocast_for(precision, CPU):
            losses = compute_losses(model(batch), batch, model.config)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        samples += batch["answers"].shape[0]
    return samples / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GQA-REX store (default: a fixture store in a temp dir)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="default: the recipe's")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating REX / baseline rounds")
    parser.add_argument("--decode-questions", type=int, default=256)
    parser.add_argument("--to-target", type=float, default=None,
                        help="also train the default recipe and report the time to this val accuracy (%%)")
    parser.add_argument("--epochs", type=int, default=None, help="with --to-target: epochs (default: the recipe's)")
    parser.add_argument("--val-every", type=int, default=50, help="with --to-target: validation every N steps")
    args = parser.parse_args()

    if args.data is None:
        from store_fixture import make_tiny_store

        data = make_tiny_store(Path(tempfile.mkdtemp(prefix="bench_train_")), n_train=4096, n_val=512)
    else:
        data = Path(args.data)
    print(f"store {data}; torch threads {torch.get_num_threads()}; batch size {args.batch_size}")

    recipe = TrainConfig(data=str(data), out="")  # the defaults: what `python -m rexlib train` trains
    tokenizer = question_tokenizer(recipe.pretrained)  # the shipped backbone's, on the default world
    train_set = REXDataset(data, "train", tokenizer=tokenizer)
    vocab = load_vocab(data)

    # -- data loading: the DataLoader as training uses it (shuffled, whole-batch fetches)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    started, loaded = time.perf_counter(), 0
    for batch in loader:
        loaded += batch["answers"].shape[0]
    loading_rate = loaded / (time.perf_counter() - started)

    # -- training: REX and the baseline, alternating rounds on the same batches
    batches = [train_set.batch(range(i * args.batch_size, (i + 1) * args.batch_size)) for i in range(args.steps)]
    models = {}
    for name, gate, precision in (("REX", True, recipe.precision), ("baseline", False, recipe.precision),
                                  ("REX fp32", True, "fp32")):
        torch.manual_seed(0)
        config = build_model_config(TrainConfig(data=str(data), out="", structure_gate=gate), vocab,
                                    train_set.feature_dim, load_dataset_info(data))
        model = REX(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
        models[name] = (model, optimizer, precision)
        training_round(model, optimizer, batches, precision)  # warm-up on every shape: bf16 kernels are made per shape
    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, optimizer, precision) in models.items():
            rates[name].append(training_round(model, optimizer, batches, precision))
    training = {name: statistics.median(values) for name, values in rates.items()}

    # -- decoding
    val_set = REXDataset(data, "val", tokenizer=tokenizer)
    count = min(args.decode_questions, len(val_set))
    val_batches = [val_set.batch(range(i, min(i + 64, count))) for i in range(0, count, 64)]
    decoding = {}
    for label, decode in (("greedy", lambda m, b: greedy(m, b)), ("beam 3", lambda m, b: beam_search(m, b, 3))):
        started = time.perf_counter()
        for batch in val_batches:
            decode(models["REX"][0], batch)
        decoding[label] = count / (time.perf_counter() - started)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    overhead = training["baseline"] / training["REX"] - 1.0
    print(f"training samples/s  REX {training['REX']:.0f}   baseline {training['baseline']:.0f}   "
          f"(rounds: REX {[round(r) for r in rates['REX']]}, baseline {[round(r) for r in rates['baseline']]})")
    print(f"structure-gate overhead {overhead:+.1%} (target <= 15%)")
    used = "a bf16 backbone" if uses_bf16(recipe.precision, CPU) else "fp32"
    print(f"precision {recipe.precision} ({used} here): REX {training['REX'] / training['REX fp32']:.2f}x the "
          f"samples/s of fp32 ({training['REX fp32']:.0f})")
    print(f"data loading samples/s {loading_rate:.0f} = {loading_rate / training['REX']:.0f}x training (target >= 5x)")
    print(f"decoding questions/s  greedy {decoding['greedy']:.0f}   beam 3 {decoding['beam 3']:.0f}")
    print(f"peak resident memory {peak_mib:.0f} MiB")
    print(f"default recipe: preset {recipe.preset}, {recipe.epochs} epochs, batch {recipe.batch_size}, "
          f"answer head {recipe.answer_head}, box geometry {recipe.box_geometry}")
    if args.to_target is not None:
        time_to_target(data, args.to_target, args.epochs or recipe.epochs, args.val_every)
    return 0


def time_to_target(data: Path, target: float, epochs: int, val_every: int) -> None:
    """Train the default recipe and report when validation answer accuracy first reached `target` %."""
    import csv

    out = Path(tempfile.mkdtemp(prefix="bench_train_run_"))
    summary = train(TrainConfig(data=str(data), out=str(out), epochs=epochs, val_every_steps=val_every,
                                progress=False))
    train_rates, elapsed, best = [], 0.0, (0.0, 0)
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["split"] == "train":
            train_rates.append(float(row["samples_per_second"]))
            continue
        accuracy, step = 100 * float(row["answer_accuracy"]), int(row["step"])
        rate = statistics.mean(train_rates) if train_rates else summary["train_samples_per_second"]
        elapsed = step * TrainConfig(data="", out="").batch_size / rate
        best = max(best, (accuracy, step))
        if accuracy >= target:
            print(f"time to {target:g}% val accuracy: {elapsed:.0f} s of training (step {step}, {accuracy:.1f}%)")
            return
    print(f"{target:g}% val accuracy not reached in {epochs} epochs ({elapsed:.0f} s of training); best "
          f"{best[0]:.1f}% at step {best[1]}; {summary['train_samples_per_second']:.0f} samples/s")


if __name__ == "__main__":
    raise SystemExit(main())
