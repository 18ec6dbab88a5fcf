"""REX model: shapes, the mixed distribution, losses, overfitting, LXMERT and local pretrained weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from store_fixture import make_tiny_store, save_tiny_pretrained

from rexlib.model import REX, REXConfig, compute_losses, mix_distributions, vocab_overrides
from rexlib.model.decoder import ExplanationDecoder
from rexlib.model.decoding import greedy
from rexlib.model.rex import batch_accuracies
from rexlib.training.data import REXDataset, load_vocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("store"), n_train=48, n_val=16)


def tiny_config(store, **overrides) -> REXConfig:
    return REXConfig.preset("tiny", **{**vocab_overrides(load_vocab(store)), "region_feature_dim": 32, **overrides})


def test_output_shapes_rex_and_baseline(store):
    batch = REXDataset(store, "train").batch(range(5))
    steps = batch["explanation_tokens"].shape[1]
    for gate in (True, False):
        config = tiny_config(store, structure_gate=gate)
        output = REX(config)(batch)
        assert output.log_probs.shape == (5, steps, config.explanation_vocab_size)
        assert output.answer_logits.shape == (5, config.answer_vocab_size)
        if gate:
            assert output.gate.shape == (5, steps)
            assert output.region_similarity.shape == (5, steps, 36)
        else:
            assert output.gate is None and output.region_similarity is None


def test_region_token_ids_come_from_the_vocabulary(store):
    vocab = load_vocab(store)
    shuffled = dict(vocab, explanation=vocab["explanation"][:4] + ["extra"] + vocab["explanation"][4:])
    ids = vocab_overrides(shuffled)["region_token_ids"]
    assert ids[0] == 5 and ids[35] == 40


def test_mixed_distribution_sums_to_one(store):
    config = tiny_config(store)
    batch = REXDataset(store, "train").batch(range(6))
    output = REX(config)(batch)
    totals = output.log_probs.exp().sum(-1)
    assert torch.allclose(totals, torch.ones_like(totals), atol=1e-5)
    assert torch.allclose(output.region_similarity.sum(-1), torch.ones_like(totals), atol=1e-5)


def test_mix_puts_the_pointer_mass_on_region_tokens():
    vocabulary = torch.log_softmax(torch.zeros(1, 10), -1)          # uniform 0.1
    similarity = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    region_ids = torch.tensor([4, 5, 6])
    gate_logit = torch.tensor([0.0])                                 # g = 0.5
    mixed = mix_distributions(vocabulary, gate_logit, similarity, region_ids).exp()[0]
    assert mixed[0].item() == pytest.approx(0.05)
    assert mixed[4].item() == pytest.approx(0.05 + 0.25)
    assert mixed[5].item() == pytest.approx(0.05 + 0.125)
    assert mixed.sum().item() == pytest.approx(1.0)


def test_loss_modes_and_balanced_gate(store):
    config = tiny_config(store, alpha=0.5, beta=2.0)
    batch = REXDataset(store, "train").batch(range(8))
    output = REX(config)(batch)
    multitask = compute_losses(output, batch, config, "multitask")
    # The paper's total: alpha weighs the explanation, not the answer.
    expected = multitask["answer"] + 0.5 * multitask["explanation"] + 2.0 * multitask["gate"]
    assert torch.allclose(multitask["total"], expected)
    assert torch.allclose(compute_losses(output, batch, config, "vqa")["total"], multitask["answer"])
    explanation = compute_losses(output, batch, config, "explanation")["total"]
    assert torch.allclose(explanation, 0.5 * multitask["explanation"] + 2.0 * multitask["gate"])
    # A gate that predicts every target exactly has (almost) no loss; the opposite gate has a large one.
    perfect = dataclasses.replace(output, gate=batch["gate_targets"].clone())
    assert compute_losses(perfect, batch, config)["gate"].item() < 1e-4
    wrong = dataclasses.replace(output, gate=1 - batch["gate_targets"])
    assert compute_losses(wrong, batch, config)["gate"].item() > 5
    # Unknown answers (-1) are ignored, not an error.
    batch_unknown = dict(batch, answers=torch.full_like(batch["answers"], -1))
    assert compute_losses(output, batch_unknown, config)["answer"].item() == 0.0
    with pytest.raises(ValueError, match="loss mode"):
        compute_losses(output, batch, config, "captioning")


@pytest.mark.parametrize("structure_gate", [True, False])
def test_tiny_batch_overfits(store, structure_gate):
    torch.manual_seed(0)
    # Half the tiny widths keep this quick; the architecture is the same.
    config = tiny_config(store, structure_gate=structure_gate, dropout=0.0, hidden_size=64, intermediate_size=128,
                         decoder_hidden_size=64, attention_size=64)
    model = REX(config)
    batch = REXDataset(store, "train").batch(range(12))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(400):
        output = model(batch)
        losses = compute_losses(output, batch, config)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        if step % 10 == 9 and batch_accuracies(output, batch)["correct_tokens"] == batch["explanation_mask"].sum():
            break
    print(f"stopped after {step + 1} steps")
    model.eval()
    with torch.no_grad():
        counts = batch_accuracies(model(batch), batch)
    assert counts["correct_tokens"] / counts["tokens"] >= 0.95
    assert counts["correct_answers"] / counts["answers"] >= 0.9


def test_scheduled_sampling_changes_training_inputs_only(store):
    torch.manual_seed(0)
    config = tiny_config(store, dropout=0.0, scheduled_sampling=1.0)
    model = REX(config)
    batch = REXDataset(store, "train").batch(range(4))
    teacher_forced = REX(dataclasses.replace(config, scheduled_sampling=0.0))
    teacher_forced.load_state_dict(model.state_dict())
    model.eval(), teacher_forced.eval()
    assert torch.allclose(model(batch).log_probs, teacher_forced(batch).log_probs)
    model.train(), teacher_forced.train()
    assert not torch.allclose(model(batch).log_probs, teacher_forced(batch).log_probs)


def test_lxmert_backbone_forward(store):
    config = tiny_config(store, backbone="lxmert")
    batch = REXDataset(store, "train").batch(range(3))
    output = REX(config)(batch)
    assert output.log_probs.shape[:2] == batch["explanation_tokens"].shape
    assert output.answer_logits.shape == (3, config.answer_vocab_size)
    compute_losses(output, batch, config)["total"].backward()


def test_local_pretrained_visualbert_and_tokenizer(store, tmp_path):
    from transformers import VisualBertModel

    from rexlib.model.pretrained import question_tokenizer

    pretrained = save_tiny_pretrained(store, tmp_path / "visualbert")

    loaded_tokenizer = question_tokenizer(str(pretrained))
    dataset = REXDataset(store, "train", tokenizer=loaded_tokenizer)
    batch = dataset.batch(range(4))
    first = batch["question_tokens"][0]
    assert first[0].item() == loaded_tokenizer.cls_token_id
    assert loaded_tokenizer.unk_token_id not in first.tolist()
    config = tiny_config(store, pretrained=str(pretrained), question_vocab_size=len(loaded_tokenizer))
    model = REX(config)
    saved = VisualBertModel.from_pretrained(pretrained, local_files_only=True)
    name = "embeddings.word_embeddings.weight"
    assert torch.equal(model.backbone.model.state_dict()[name], saved.state_dict()[name])
    output = model(batch)
    assert output.answer_logits.shape == (4, config.answer_vocab_size)

    with pytest.raises(ValueError, match="region"):
        REX(tiny_config(store, pretrained=str(pretrained), region_feature_dim=16))


def test_box_geometry_starts_a_pretrained_backbone_unchanged(store, tmp_path):
    """Loaded pretrained weights with `box_geometry` on give exactly the outputs they give without it:
    the geometry projection starts at zero, and VisualBERT's own projection keeps its loaded weights."""
    from transformers import BertTokenizerFast, VisualBertModel

    pretrained = save_tiny_pretrained(store, tmp_path / "visualbert")
    tokenizer = BertTokenizerFast.from_pretrained(pretrained, local_files_only=True)
    batch = REXDataset(store, "train", tokenizer=tokenizer).batch(range(4))
    config = tiny_config(store, pretrained=str(pretrained), question_vocab_size=len(tokenizer), dropout=0.0)
    with_geometry = REX(dataclasses.replace(config, box_geometry=True)).backbone.eval()
    without = REX(dataclasses.replace(config, box_geometry=False)).backbone.eval()
    saved = VisualBertModel.from_pretrained(pretrained, local_files_only=True).state_dict()
    projection = with_geometry.model.embeddings.visual_projection
    assert torch.equal(projection.weight, saved["embeddings.visual_projection.weight"])
    assert projection.geometry.weight.abs().sum() == 0
    inputs = (batch["question_tokens"], batch["question_mask"], batch["region_features"], batch["region_boxes"])
    first, second = with_geometry(*inputs), without(*inputs)
    assert torch.allclose(first.cls, second.cls, atol=1e-6) and torch.allclose(first.regions, second.regions, atol=1e-6)
    # Once it learns, the boxes matter: moving every box changes the fused states.
    torch.nn.init.normal_(projection.geometry.weight)
    moved = with_geometry(*inputs[:3], batch["region_boxes"].flip(-1))
    assert not torch.allclose(with_geometry(*inputs).cls, moved.cls)


def test_geometry_and_region_answer_head_from_scratch(store):
    """From scratch the geometry projection is learnable (not zero); the region-reading answer head
    depends on the regions' states, the [CLS] head only through [CLS]."""
    batch = REXDataset(store, "train").batch(range(4))
    model = REX(tiny_config(store, answer_head="regions", dropout=0.0)).eval()
    assert model.backbone.model.embeddings.visual_projection.geometry.weight.abs().sum() > 0
    context, logits = model.encode(batch)
    changed, attention = model.answer_head(context.cls, context.regions + 1.0)
    assert not torch.allclose(logits, changed)
    assert attention.shape == (4, 36) and torch.allclose(attention.sum(dim=1), torch.ones(4))
    paper = REXConfig.preset("paper")
    assert not paper.box_geometry and paper.answer_head == "cls" and paper.hidden_size == 768
    with pytest.raises(ValueError, match="answer_head"):
        tiny_config(store, answer_head="pooled")


def test_answer_attention_loss_points_at_the_explained_regions(store):
    """gamma > 0: the region-reading head's attention is trained towards the explanation's #k regions
    (the tiny store's explanations name one region, or none for "there is no lamp"); a few steps move the
    attention there."""
    from rexlib.model.rex import explained_regions

    config = tiny_config(store, answer_head="regions", gamma=1.0, dropout=0.0)
    batch = REXDataset(store, "train").batch(range(16))
    named = explained_regions(batch["explanation_tokens"], config.region_token_ids)
    named_rows = named.sum(dim=1) > 0
    assert named.shape == (16, 36) and named.sum(dim=1).max() == 1 and named_rows.sum() >= 8
    torch.manual_seed(0)
    model = REX(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        losses = compute_losses(model(batch), batch, config)
        first = losses["answer_attention"].item() if first is None else first
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    assert losses["answer_attention"].item() < 0.5 * first
    on_target = (model(batch).answer_attention * named).sum(dim=1)[named_rows]
    assert on_target.mean().item() > 0.5
    # Off (gamma 0) it is not computed and adds nothing.
    assert compute_losses(model(batch), batch, dataclasses.replace(config, gamma=0.0))["answer_attention"].item() == 0.0
    # The answer-only diagnostic (vqa) trains the answer alone: no explanation reaches it through the attention.
    answer_only = compute_losses(model(batch), batch, config, mode="vqa")
    assert answer_only["answer_attention"].item() == 0.0 and answer_only["total"].item() == answer_only["answer"].item()


def test_region_feedback_reads_the_region_last_pointed_at(store):
    """Every step after `#k` reads region k (until the next `#k`), in teacher forcing and step by step; the
    feedback starts at zero, so a new model decodes as the paper's decoder does; old runs and the paper
    preset have none."""
    torch.manual_seed(0)
    batch = REXDataset(store, "train").batch(range(2))
    config = tiny_config(store, dropout=0.0)
    model = REX(config).eval()
    decoder = model.decoder
    word, three, five = config.end_token_id, config.region_token_ids[3], config.region_token_ids[5]
    tokens = torch.tensor([[word, three, word, five, word]] * 2)
    with torch.no_grad():
        context, _ = model.encode(batch)
        regions = context.regions
        referents = decoder.referents(tokens, context)
        expected = torch.stack([torch.zeros_like(regions[:, 0]), regions[:, 3], regions[:, 3], regions[:, 5],
                                regions[:, 5]], dim=1)
        assert torch.equal(referents, expected)
        assert not torch.allclose(referents[0, 1], referents[1, 1])          # two images, two region states
        state = decoder.initial_state(context)
        for t in range(tokens.shape[1]):                                     # the step path keeps the same referent
            state = decoder.step(tokens[:, t], state, context)
            assert torch.equal(state.referent, expected[:, t])
        output = model(batch)
    paper = REX(tiny_config(store, region_feedback=False)).eval()
    assert paper.decoder.region_feedback is None
    paper.load_state_dict(model.state_dict(), strict=False)                 # the same weights, no feedback
    with torch.no_grad():
        assert torch.allclose(paper(batch).log_probs, output.log_probs, atol=1e-6)
    saved = {k: v for k, v in config.to_dict().items() if k != "region_feedback"}
    assert REXConfig.from_dict(saved).region_feedback is False               # runs saved before the option
    assert REXConfig.preset("paper").region_feedback is False


def test_pointer_coverage_offsets_the_regions_already_named(store):
    """Teacher forcing and step-by-step decoding see the same named regions; at zero the offset changes
    nothing (a new model points as the paper's does); strongly negative, greedy explanations never name a
    region twice; old runs and the paper preset have none."""
    torch.manual_seed(0)
    batch = REXDataset(store, "train").batch(range(4))
    config = tiny_config(store, dropout=0.0, pointer_coverage=True)
    model = REX(config).eval()
    decoder = model.decoder
    word, three, five = config.end_token_id, config.region_token_ids[3], config.region_token_ids[5]
    tokens = torch.tensor([[word, three, word, five, three]] * 4)
    pointed = decoder.pointed_regions(tokens)
    assert pointed.shape == (4, 5, 36)
    assert pointed[0, 0].sum() == 0 and pointed[0, 1].nonzero().flatten().tolist() == [3]
    assert pointed[0, 4].nonzero().flatten().tolist() == [3, 5]
    with torch.no_grad():
        context, _ = model.encode(batch)
        state = decoder.initial_state(context)
        for t in range(tokens.shape[1]):
            state = decoder.step(tokens[:, t], state, context)
            assert torch.equal(state.pointed, pointed[:, t])
        output = model(batch)
    plain = REX(tiny_config(store, dropout=0.0)).eval()
    assert plain.decoder.structure_gate.coverage is None
    plain.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        assert torch.allclose(plain(batch).log_probs, output.log_probs, atol=1e-6)
        decoder.structure_gate.coverage.fill_(-1e3)
        decoder.structure_gate.gate.bias.fill_(-1e4)                      # always point: #k tokens only
        explanations, _ = greedy(model, batch, max_length=8, repeat_regions=True)  # the offset alone
    named = [row[(row >= config.region_token_ids[0]) & (row <= config.region_token_ids[-1])].tolist()
             for row in explanations]
    assert all(len(row) == 9 and len(set(row)) == 9 for row in named)    # nine steps, nine different regions
    saved = {k: v for k, v in config.to_dict().items() if k != "pointer_coverage"}
    assert REXConfig.from_dict(saved).pointer_coverage is False
    assert REXConfig.preset("paper").pointer_coverage is False


def test_question_attention_reads_the_question_tokens_not_their_padding(store):
    torch.manual_seed(0)
    batch = REXDataset(store, "train").batch(range(4))
    model = REX(tiny_config(store, dropout=0.0, question_attention=True)).eval()
    decoder = model.decoder
    with torch.no_grad():
        context, _ = model.encode(batch)
        assert context.text.shape[:2] == batch["question_mask"].shape
        text_mask = context.text_mask.clone()
        text_mask[0, -1] = False                                   # as if the first question were one word shorter
        context = dataclasses.replace(context, text_mask=text_mask)
        state = decoder.initial_state(context)
        start = torch.full((4,), model.config.start_token_id)
        _, weights = decoder.question_attention(context.projected_text, context.text, state.language, context.text_mask)
        assert torch.allclose(weights.sum(-1), torch.ones(4)) and (weights[~context.text_mask] == 0).all()
        before = decoder.step(start, state, context).attention
        padded = ~context.text_mask
        noisy = dataclasses.replace(context, text=context.text + 5.0 * padded[..., None],
                                    projected_text=context.projected_text + 5.0 * padded[..., None])
        assert torch.allclose(decoder.step(start, state, noisy).attention, before, atol=1e-6)   # padding unread
        first = torch.zeros_like(padded)
        first[:, 1] = True                                                                      # a real word
        changed = dataclasses.replace(context, text=context.text + first[..., None],
                                      projected_text=context.projected_text + first[..., None])
        assert not torch.allclose(decoder.step(start, state, changed).attention, before)      # the words are read
    assert REX(tiny_config(store)).decoder.question_attention is None                 # off by default
    assert REXConfig.preset("paper").question_attention is False


@pytest.mark.parametrize("feedback", [True, False])
def test_region_feedback_lets_the_decoder_say_what_the_pointed_region_shows(feedback):
    """Explanations "#k is <colour of region k>" over random regions: with region feedback the decoder learns to
    name the pointed region's colour; the paper's decoder cannot tell which region `#k` is (regions carry no
    index), so it stays near a guess among the four colours."""
    torch.manual_seed(0)
    config = REXConfig.preset("tiny", explanation_vocab_size=48, region_token_ids=tuple(range(4, 40)), dropout=0.0,
                              region_feedback=feedback, question_attention=False, hidden_size=32,
                              decoder_hidden_size=64, attention_size=32, word_embedding_size=32)
    decoder = ExplanationDecoder(config, region_size=32)
    colour_of = torch.randn(32, 4)                                    # the colour is linear in the region's state
    is_token, colours = 40, torch.arange(41, 45)

    def batch(size):
        regions = torch.randn(size, 36, 32)
        pointed = torch.randint(0, 36, (size,))
        colour = colours[(regions[torch.arange(size), pointed] @ colour_of).argmax(-1)]
        tokens = torch.stack([pointed + 4, torch.full((size,), is_token), colour,
                              torch.full((size,), config.end_token_id)], dim=1)
        return decoder.prepare(regions.mean(1), regions), tokens

    optimiser = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(100):
        context, tokens = batch(32)
        log_probs = decoder(context, tokens)[0]
        loss = -log_probs.gather(-1, tokens[..., None]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        context, tokens = batch(512)
        accuracy = (decoder(context, tokens)[0][:, 2].argmax(-1) == tokens[:, 2]).float().mean().item()
    assert (accuracy > 0.8) if feedback else (accuracy < 0.45)


def test_bf16_autocast_reaches_the_backbone_only(store):
    """Under a bf16 autocast (`--precision bf16`) the backbone computes in bf16; the answer head and the decoder
    stay fp32, and the outputs are fp32 and close to the fp32 model's."""
    torch.manual_seed(0)
    batch = REXDataset(store, "train").batch(range(4))
    model = REX(tiny_config(store, dropout=0.0)).eval()
    dtypes: dict[str, set] = {"backbone": set(), "heads": set()}
    for part, modules in (("backbone", model.backbone), ("heads", model.answer_head), ("heads", model.decoder)):
        for module in modules.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(lambda _m, _i, out, part=part: dtypes[part].add(out.dtype))
    with torch.no_grad():
        reference = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(batch)
    assert torch.bfloat16 in dtypes["backbone"] and dtypes["heads"] == {torch.float32}
    for name in ("log_probs", "answer_logits", "gate", "region_similarity"):
        assert getattr(mixed, name).dtype == torch.float32, name
    assert torch.allclose(mixed.log_probs, reference.log_probs, atol=0.1)
    assert torch.allclose(mixed.answer_logits, reference.answer_logits, atol=0.1)
