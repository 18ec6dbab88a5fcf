"""Greedy and beam decoding: shapes, padding after <end>, greedy == beam 1, the mixed distribution."""

from __future__ import annotations

import pytest
import torch
from store_fixture import make_tiny_store

from rexlib.model import REX, REXConfig, compute_losses, vocab_overrides
from rexlib.model.decoding import beam_search, greedy, tokens_to_text
from rexlib.training.data import REXDataset, load_vocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny REX model fitted a little to 12 questions, so decoding produces real explanations."""
    store = make_tiny_store(tmp_path_factory.mktemp("store"), n_train=24, n_val=8)
    vocab = load_vocab(store)
    torch.manual_seed(0)
    config = REXConfig.preset("tiny", **{**vocab_overrides(vocab), "region_feature_dim": 32, "dropout": 0.0,
                                         "hidden_size": 64, "intermediate_size": 128, "decoder_hidden_size": 64})
    model = REX(config)
    batch = REXDataset(store, "train").batch(range(12))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped `one_torch_thread`
    for _ in range(120):
        loss = compute_losses(model(batch), batch, config)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    return model, batch, vocab


def _check_padding(tokens, end_id):
    for row in tokens.tolist():
        if end_id in row:
            after = row[row.index(end_id) + 1 :]
            assert all(token == 0 for token in after)


def test_greedy_reproduces_the_fitted_explanations(trained):
    model, batch, vocab = trained
    tokens, answer_logits = greedy(model, batch)
    assert tokens.dtype == torch.long and tokens.shape[0] == 12 and tokens.shape[1] <= 13
    assert answer_logits.shape == (12, model.config.answer_vocab_size)
    _check_padding(tokens, model.config.end_token_id)
    predicted = tokens_to_text(tokens, vocab)
    reference = tokens_to_text(batch["explanation_tokens"], vocab)
    assert sum(p == r for p, r in zip(predicted, reference)) >= 10
    assert any("#" in text for text in predicted)
    assert model.training  # decoding restores the mode it found


def test_greedy_equals_beam_of_one(trained):
    model, batch, _ = trained
    greedy_tokens, greedy_answers = greedy(model, batch)
    beam_tokens, beam_answers = beam_search(model, batch, beam_size=1)
    assert torch.equal(greedy_tokens, beam_tokens)
    assert torch.equal(greedy_answers, beam_answers)


def test_greedy_equals_beam_of_one_untrained_baseline():
    torch.manual_seed(1)
    config = REXConfig.preset("tiny", structure_gate=False, region_feature_dim=32, question_vocab_size=20,
                              hidden_size=64, intermediate_size=128, decoder_hidden_size=64)
    model = REX(config)
    batch = {"question_tokens": torch.randint(1, 20, (5, 7)), "question_mask": torch.ones(5, 7, dtype=torch.bool),
             "region_features": torch.randn(5, 36, 32), "region_boxes": torch.rand(5, 36, 4)}
    assert torch.equal(greedy(model, batch, max_length=6)[0], beam_search(model, batch, 1, max_length=6)[0])
    assert greedy(model, batch, max_length=6)[0].shape[1] <= 7


def _sequence_log_prob(model, batch, tokens):
    """Sum of the model's log-probabilities of `tokens` (teacher forced), up to and including <end>."""
    model.eval()
    with torch.no_grad():
        output = model(dict(batch, explanation_tokens=tokens))
    model.train()
    end = model.config.end_token_id
    mask = torch.ones_like(tokens, dtype=torch.bool)
    for row, values in enumerate(tokens.tolist()):
        if end in values:
            mask[row, values.index(end) + 1 :] = False
    picked = output.log_probs.gather(-1, tokens[..., None]).squeeze(-1)
    return (picked * mask).sum(-1)


def test_beam_search_finds_at_least_as_probable_explanations(trained):
    model, batch, vocab = trained
    greedy_tokens, _ = greedy(model, batch)
    beam_tokens, _ = beam_search(model, batch, beam_size=3)
    _check_padding(beam_tokens, model.config.end_token_id)
    width = max(greedy_tokens.shape[1], beam_tokens.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))
    greedy_score = _sequence_log_prob(model, batch, pad(greedy_tokens))
    beam_score = _sequence_log_prob(model, batch, pad(beam_tokens))
    assert torch.all(beam_score >= greedy_score - 1e-4)
    assert all(isinstance(text, str) for text in tokens_to_text(beam_tokens, vocab))
    with pytest.raises(ValueError):
        beam_search(model, batch, beam_size=0)


def test_tokens_to_text_stops_at_end():
    vocab = {"explanation": ["<pad>", "<start>", "<end>", "<unk>", "#0", "the", "red"]}
    assert tokens_to_text(torch.tensor([[5, 4, 6, 2, 0], [1, 5, 2, 6, 6]]), vocab) == ["the #0 red", "the"]


@pytest.mark.parametrize("decode", [greedy, lambda model, batch, **kw: beam_search(model, batch, 3, **kw)],
                         ids=["greedy", "beam"])
def test_decoding_names_no_region_twice_unless_asked(trained, decode):
    """With the gate forced to point, every step writes a `#k`: by default nine steps name nine different
    regions; `repeat_regions=True` (the paper's decoding) lets the pointer come back to one; the answers
    are the same either way."""
    model, batch, _ = trained
    gate_bias = model.decoder.structure_gate.gate.bias
    saved = gate_bias.detach().clone()
    with torch.no_grad():
        gate_bias.fill_(-1e4)
    try:
        plain, plain_answers = decode(model, batch, max_length=8)
        repeated, repeated_answers = decode(model, batch, max_length=8, repeat_regions=True)
    finally:
        with torch.no_grad():
            gate_bias.copy_(saved)
    token_regions = model.decoder.token_regions
    assert bool((token_regions[plain] >= 0).all()) and bool((token_regions[repeated] >= 0).all())
    assert all(len(set(row)) == 9 for row in token_regions[plain].tolist())
    assert any(len(set(row)) < 9 for row in token_regions[repeated].tolist())
    assert torch.equal(plain_answers, repeated_answers)
