"""Training, data-loading and decoding speed of the tiny preset on CPU.

    python benchmarks/bench_train.py [--data DIR] [--batch-size 64] [--steps 20]

Without --data it builds a fixture store (tests/store_fixture.py) in a temporary directory. REX and the
baseline are timed in alternating rounds in the same process, so the gate overhead ratio is not skewed
by whatever else the machine is doing; the median round counts.
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

from rexlib.data import REXDataset, collate, load_vocab
from rexlib.decode import beam_search, greedy
from rexlib.model import REX, REXConfig, compute_losses, vocab_overrides


def training_round(model, optimizer, batches) -> float:
    """Samples per second over `batches` (forward, losses, backward, clip, Adam)."""
    model.train()
    started = time.perf_counter()
    samples = 0
    for batch in batches:
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
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating REX / baseline rounds")
    parser.add_argument("--decode-questions", type=int, default=256)
    args = parser.parse_args()

    if args.data is None:
        from store_fixture import make_tiny_store

        data = make_tiny_store(Path(tempfile.mkdtemp(prefix="bench_train_")), n_train=4096, n_val=512)
    else:
        data = Path(args.data)
    print(f"store {data}; torch threads {torch.get_num_threads()}; batch size {args.batch_size}")

    train_set = REXDataset(data, "train")
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
    for name, gate in (("REX", True), ("baseline", False)):
        torch.manual_seed(0)
        config = REXConfig.preset("tiny", **{**vocab_overrides(vocab), "region_feature_dim": train_set.feature_dim,
                                             "structure_gate": gate})
        model = REX(config)
        models[name] = (model, torch.optim.Adam(model.parameters(), lr=5e-4))
        training_round(*models[name], batches[:2])  # warm-up
    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, optimizer) in models.items():
            rates[name].append(training_round(model, optimizer, batches))
    training = {name: statistics.median(values) for name, values in rates.items()}

    # -- decoding
    val_set = REXDataset(data, "val")
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
    print(f"data loading samples/s {loading_rate:.0f} = {loading_rate / training['REX']:.0f}x training (target >= 5x)")
    print(f"decoding questions/s  greedy {decoding['greedy']:.0f}   beam 3 {decoding['beam 3']:.0f}")
    print(f"peak resident memory {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
