"""`python -m rexlib train`: flags -> `rexlib.training.loop.TrainConfig` -> `rexlib.training.loop.train`."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="GQA-REX store directory (dataset.json, vocab.json, ...)")
    parser.add_argument("--out", required=True, help="run directory, e.g. outputs/runs/rex_tiny")
    parser.add_argument("--mode", default="multitask", choices=["multitask", "explanation", "vqa-finetune", "answer-only"],
                        help="vqa-finetune: the multi-task loss on --fraction of the questions (transfer); "
                             "answer-only: the answer loss alone (a diagnostic)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "base"])
    parser.add_argument("--no-structure-gate", action="store_true", help="train the baseline (no structure gate)")
    parser.add_argument("--backbone", default="visualbert", choices=["visualbert", "lxmert"])
    parser.add_argument("--pretrained", default=None, help="local Hugging Face directory (weights + tokenizer)")
    parser.add_argument("--epochs", type=int, default=2, help="passes over the training split (default: the demo recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default: the preset's, rexlib.training.loop.DEFAULT_LR)")
    parser.add_argument("--schedule", default="linear", choices=["linear", "cosine", "constant"])
    parser.add_argument("--warmup-fraction", type=float, default=0.05)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="explanation-loss weight: total = answer + alpha explanation + beta gate")
    parser.add_argument("--beta", type=float, default=1.0, help="structure-gate loss weight")
    parser.add_argument("--dropout", type=float, default=None)
    parser.add_argument("--no-box-geometry", action="store_true",
                        help="the paper's region inputs: features only, no projected box geometry")
    parser.add_argument("--answer-head", default="regions", choices=["cls", "regions"],
                        help="regions (default): [CLS] plus a question-conditioned attention over the fused "
                             "regions; cls: MLP on [CLS] only (the paper's)")
    parser.add_argument("--gamma", type=float, default=0.0,
                        help="with --answer-head regions: weight of the loss that points the answer head's "
                             "attention at the regions the ground-truth explanation names")
    parser.add_argument("--length-buckets", action="store_true",
                        help="batches of similar explanation lengths: fewer decoder steps (1.48x samples/s on the "
                             "demo world) but batches of one question type each, which slows answer learning")
    parser.add_argument("--regions", default="image", choices=["image", "none"],
                        help="none: train without regions (the question-only diagnostic)")
    parser.add_argument("--scheduled-sampling", type=float, default=0.0,
                        help="probability of feeding the model's own previous word (default: teacher forcing)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt")
    parser.add_argument("--init-from", default=None, help="run directory with explanation-pretrained weights")
    parser.add_argument("--fraction", type=float, default=1.0, help="stratified share of training questions")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--stop-after-steps", type=int, default=None, help="checkpoint and stop (simulated kill)")
    parser.add_argument("--checkpoint-every-steps", type=int, default=0)
    parser.add_argument("--val-every-steps", type=int, default=0,
                        help="also validate every N steps (metrics.csv rows: accuracy against training budget)")
    parser.add_argument("--best-metric", default="auto",
                        choices=["auto", "val_loss", "token_accuracy", "answer_accuracy"])
    parser.add_argument("--val-split", default="val")
    parser.add_argument("--val-max-questions", type=int, default=2000)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")


def config_from_args(args: argparse.Namespace):
    from rexlib.training.loop import TrainConfig

    return TrainConfig(
        data=args.data, out=args.out, mode=args.mode, preset=args.preset,
        structure_gate=not args.no_structure_gate, backbone=args.backbone, pretrained=args.pretrained,
        epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
        warmup_fraction=args.warmup_fraction, grad_clip=args.grad_clip, alpha=args.alpha, beta=args.beta,
        box_geometry=not args.no_box_geometry, answer_head=args.answer_head, regions=args.regions,
        gamma=args.gamma, length_buckets=args.length_buckets,
        dropout=args.dropout, scheduled_sampling=args.scheduled_sampling, resume=args.resume,
        init_from=args.init_from, fraction=args.fraction, max_steps=args.max_steps,
        stop_after_steps=args.stop_after_steps, checkpoint_every_steps=args.checkpoint_every_steps,
        val_every_steps=args.val_every_steps,
        best_metric=args.best_metric, val_split=args.val_split, val_max_questions=args.val_max_questions,
        num_workers=args.num_workers, device=args.device, log_every=args.log_every, progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    from rexlib.training.loop import train

    summary = train(config_from_args(args))
    if summary.get("global_step") is not None:
        print(json.dumps(summary, indent=2, default=str))
    return 0
