"""Batched greedy and beam-search decoding of explanations (the mixed distribution when the gate is on).

Both return `(tokens (B, T) long, answer_logits (B, A))`; T <= max_length + 1 (L words, then `<end>`),
0-padded after `<end>`. Decoding switches the model to eval mode for its duration.
"""

from __future__ import annotations

import contextlib

import torch

from rexlib.model.rex import REX


@contextlib.contextmanager
def _evaluating(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _unwrap(model) -> REX:
    return model.module if hasattr(model, "module") else model


def _without_named_regions(log_probs, pointed, region_token_ids):
    """``log_probs`` (B,V) with the `#k` of every region already named (``pointed`` (B,K) = 1) at -inf: GQA-REX's
    references never name one region twice, while greedy explanations did ("the #6 is small and the #6 is
    small"); like a generator's no-repeat rule, this changes the words only, never the answer."""
    on_regions = log_probs.index_select(-1, region_token_ids).masked_fill(pointed.bool(), float("-inf"))
    return log_probs.index_copy(-1, region_token_ids, on_regions)


@torch.no_grad()
def greedy(model, batch, max_length: int = 12, repeat_regions: bool = False):
    """The most probable word at each step; unless ``repeat_regions``, never the `#k` of a region already named."""
    model = _unwrap(model)
    config = model.config
    with _evaluating(model):
        context, answer_logits = model.encode(batch)
        batch_size = answer_logits.shape[0]
        state = model.decoder.initial_state(context)
        previous = answer_logits.new_full((batch_size,), config.start_token_id, dtype=torch.long)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=answer_logits.device)
        tokens = []
        for _ in range(max_length + 1):
            state = model.decoder.step(previous, state, context)
            log_probs = model.decoder.distribution(state.language, context, state.referent, state.pointed)[0]        # (B,V)
            if not repeat_regions:
                log_probs = _without_named_regions(log_probs, state.pointed, model.decoder.region_token_ids)
            word = log_probs.argmax(dim=-1)                                            # (B,)
            word = word.masked_fill(finished, config.pad_token_id)
            tokens.append(word)
            finished = finished | (word == config.end_token_id)
            previous = word
            if bool(finished.all()):
                break
        return torch.stack(tokens, dim=1), answer_logits


@torch.no_grad()
def beam_search(model, batch, beam_size: int = 3, max_length: int = 12, repeat_regions: bool = False):
    """Keep the `beam_size` most probable partial explanations per question (sum of log-probabilities);
    unless ``repeat_regions``, no explanation names one region twice (as in greedy)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    model = _unwrap(model)
    config = model.config
    with _evaluating(model):
        context, answer_logits = model.encode(batch)
        batch_size = answer_logits.shape[0]
        device = answer_logits.device
        context = context.repeat(beam_size)                                             # B*K rows
        state = model.decoder.initial_state(context)
        rows = batch_size * beam_size
        previous = torch.full((rows,), config.start_token_id, dtype=torch.long, device=device)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        history = torch.zeros((rows, 0), dtype=torch.long, device=device)
        # Only the first beam is live at the start, so the K beams do not all pick the same word.
        scores = torch.full((batch_size, beam_size), float("-inf"), device=device)
        scores[:, 0] = 0.0
        first_row = (torch.arange(batch_size, device=device) * beam_size)[:, None]      # (B,1)
        for _ in range(max_length + 1):
            state = model.decoder.step(previous, state, context)
            log_probs = model.decoder.distribution(state.language, context, state.referent, state.pointed)[0]         # (B*K,V)
            if not repeat_regions:
                log_probs = _without_named_regions(log_probs, state.pointed, model.decoder.region_token_ids)
            vocab_size = log_probs.shape[-1]
            # A finished beam continues with <pad> at no cost and nothing else.
            log_probs = log_probs.masked_fill(finished[:, None], float("-inf"))
            log_probs[:, config.pad_token_id] = torch.where(finished, 0.0, log_probs[:, config.pad_token_id])
            candidates = (scores.reshape(rows, 1) + log_probs).reshape(batch_size, beam_size * vocab_size)
            scores, chosen = candidates.topk(beam_size, dim=1)                          # (B,K)
            origin = (first_row + chosen // vocab_size).reshape(rows)                   # (B*K,)
            word = (chosen % vocab_size).reshape(rows)
            state = state.select(origin)
            history = torch.cat([history[origin], word[:, None]], dim=1)
            finished = finished[origin] | (word == config.end_token_id)
            previous = word
            if bool(finished.all()):
                break
        best = scores.argmax(dim=1)                                                     # (B,)
        tokens = history.reshape(batch_size, beam_size, -1)[torch.arange(batch_size, device=device), best]
        return tokens, answer_logits


def tokens_to_text(ids, vocab) -> list[str]:
    """Token ids (B,T) -> space-separated explanation tokens: up to `<end>` (or `<pad>`), without `<start>`;
    an id outside the vocabulary reads `<unk>`.

    `vocab` is vocab.json's dict or its explanation list.
    """
    words = vocab["explanation"] if isinstance(vocab, dict) else vocab
    rows = ids.tolist() if hasattr(ids, "tolist") else ids
    texts = []
    for row in rows:
        out = []
        for index in row:
            token = words[index] if 0 <= index < len(words) else "<unk>"
            if token in ("<end>", "<pad>"):
                break
            if token != "<start>":
                out.append(token)
        texts.append(" ".join(out))
    return texts
