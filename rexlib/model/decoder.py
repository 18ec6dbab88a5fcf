"""The explanation decoder: two GRUs around an attention over regions, plus the structure gate.

Per step t (B = batch, K = 36 regions, H = backbone width, D = decoder state, E = word embedding):

    question read    q_t = sum_j softmax_j(w · tanh(W_x x_j) ⊙ tanh(W_h h_{t-1})) x_j   over question tokens x_j
    attention state  a_t = AttentionGRU([mean_k r_k, h_{t-1}, embed(w_{t-1}), q_t], a_{t-1})
                     (region feedback: + W_f r_ref(t), the region the explanation last pointed at)
    attended region  v_t = sum_k softmax_k(w · tanh(W_v r_k) ⊙ tanh(W_q a_t)) r_k
    language state   h_t = LanguageGRU([tanh(W v_t) ⊙ tanh(W cls), a_t], h_{t-1})
    p_vocab          = softmax(W_o h_t [+ W_r r_ref(t) with region feedback])
    structure gate   g_t = σ(w · h_t);   region similarity s_t = softmax_k(W_s h_t · r_k [+ c · pointed_k(t)])
                     (pointer coverage: c, learnt, on the regions this explanation has already named)
    p                = g_t p_vocab + (1 - g_t) s_t placed on the ids of #0..#35    (baseline: p = p_vocab)

The recurrence only produces the states h_t; the output distributions are computed for all steps at once
afterwards (teacher forcing needs nothing else from the loop), which keeps the Python loop short.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rexlib.model.config import REXConfig


@dataclass
class DecoderContext:
    """What every step reads, computed once per question."""

    cls: torch.Tensor                 # (B, H)
    regions: torch.Tensor             # (B, K, H) fused region states from the backbone
    mean_region: torch.Tensor         # (B, H)
    projected_regions: torch.Tensor   # (B, K, A) tanh(W_v r_k)
    projected_cls: torch.Tensor       # (B, D)    tanh(W cls)
    text: torch.Tensor | None = None            # (B, Lq, H) question-token states (question attention)
    text_mask: torch.Tensor | None = None       # (B, Lq) bool
    projected_text: torch.Tensor | None = None  # (B, Lq, A) tanh(W_x x_j)

    def repeat(self, times: int) -> DecoderContext:
        """Each question repeated `times` times in a row (beam search: B -> B*times)."""
        return DecoderContext(*(None if value is None else value.repeat_interleave(times, dim=0)
                                for value in vars(self).values()))


@dataclass
class DecoderState:
    attention: torch.Tensor   # (B, D)
    language: torch.Tensor    # (B, D)
    referent: torch.Tensor    # (B, H) state of the region last pointed at (`#k`), zeros before the first
    pointed: torch.Tensor     # (B, K) 1 for each region the explanation has pointed at so far

    def select(self, rows: torch.Tensor) -> DecoderState:
        return DecoderState(self.attention[rows], self.language[rows], self.referent[rows], self.pointed[rows])


class AttentionGRU(nn.Module):
    """Reads the image summary, the language state and the previous word; decides where to look next."""

    def __init__(self, region_size: int, hidden_size: int, word_embedding_size: int, question_size: int = 0):
        super().__init__()
        self.cell = nn.GRUCell(region_size + hidden_size + word_embedding_size + question_size, hidden_size)

    def forward(self, mean_region, language_state, previous_word, attention_state, question=None):
        # (B,H), (B,D), (B,E), (B,D) [, (B,H) the question read] -> (B,D)
        inputs = [mean_region, language_state, previous_word] + ([] if question is None else [question])
        return self.cell(torch.cat(inputs, dim=-1), attention_state)


class RegionAttention(nn.Module):
    """Soft attention over the 36 regions: tanh(W_v v) ⊙ tanh(W_q a) scored by a vector."""

    def __init__(self, region_size: int, hidden_size: int, attention_size: int):
        super().__init__()
        self.region_projection = nn.Linear(region_size, attention_size)
        self.state_projection = nn.Linear(hidden_size, attention_size)
        # No dropout on the (B,K,A) scores: a fresh mask per step would cost a fifth of a training step on CPU.
        self.score = nn.Linear(attention_size, 1)

    def project_regions(self, regions):
        return torch.tanh(self.region_projection(regions))                          # (B,K,A)

    def forward(self, projected_regions, regions, attention_state, mask=None):
        joint = projected_regions * torch.tanh(self.state_projection(attention_state))[:, None, :]  # (B,K,A)
        scores = self.score(joint).squeeze(-1)                                                   # (B,K)
        if mask is not None:  # the question read: padding tokens get no weight
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)                                                  # (B,K)
        # A weighted sum rather than bmm: 64 tiny (1x36)(36xH) products are slow on CPU, backward too.
        attended = (weights[:, :, None] * regions).sum(dim=1)                                    # (B,H)
        return attended, weights


class LanguageGRU(nn.Module):
    """Reads the attended region (modulated by the question) and the attention state; predicts words."""

    def __init__(self, region_size: int, hidden_size: int, vocab_size: int, dropout: float):
        super().__init__()
        self.region_projection = nn.Linear(region_size, hidden_size)
        self.cls_projection = nn.Linear(region_size, hidden_size)
        self.cell = nn.GRUCell(2 * hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.word_output = nn.Linear(hidden_size, vocab_size)

    def project_cls(self, cls):
        return torch.tanh(self.cls_projection(cls))                                 # (B,D)

    def forward(self, attended_region, projected_cls, attention_state, language_state):
        fused = torch.tanh(self.region_projection(attended_region)) * projected_cls  # (B,D)
        return self.cell(torch.cat([fused, attention_state], dim=-1), language_state)  # (B,D)

    def vocabulary_logits(self, language_states):
        return self.word_output(self.dropout(language_states))                      # (...,V)


COVERAGE_SCALE = 10.0  # pointer coverage's offset per unit of its weight


class StructureGate(nn.Module):
    """g_t = σ(w·h_t): write a word (g→1) or point at a region (g→0); s_t: which region."""

    def __init__(self, hidden_size: int, region_size: int, pointer_coverage: bool = False):
        super().__init__()
        self.gate = nn.Linear(hidden_size, 1)
        self.query = nn.Linear(hidden_size, region_size)
        self.scale = region_size ** -0.5
        # Pointer coverage (the coverage of pointer-generator summarisers, reduced to one learnt number): the
        # pointer cannot tell from h_t alone which regions it has named, and greedy explanations said "the #6 is
        # small and the #6 is small" where the reference names two objects. Zero: the paper's pointer. Adam moves
        # a weight by about the learning rate a step, so the offset is COVERAGE_SCALE times its weight: one scalar
        # at 3e-3 a step had reached only -1.1 after the demo's 936 steps.
        self.coverage = nn.Parameter(torch.zeros(())) if pointer_coverage else None

    def forward(self, language_states, regions, pointed=None):
        # language_states (B,T,D) (or (B,D)), regions (B,K,H), pointed (B,T,K) (or (B,K)) -> gate logits (B,T),
        # log s_t (B,T,K)
        squeeze = language_states.dim() == 2
        if squeeze:
            language_states = language_states[:, None, :]
            pointed = None if pointed is None else pointed[:, None, :]
        gate_logits = self.gate(language_states).squeeze(-1)                                    # (B,T)
        similarity = torch.matmul(self.query(language_states), regions.transpose(1, 2)) * self.scale  # (B,T,K)
        if self.coverage is not None and pointed is not None:
            similarity = similarity + COVERAGE_SCALE * self.coverage * pointed
        similarity = F.log_softmax(similarity, dim=-1)
        if squeeze:
            return gate_logits[:, 0], similarity[:, 0]
        return gate_logits, similarity


def mix_distributions(vocabulary_log_probs, gate_logits, similarity_log_probs, region_token_ids):
    """log(g p_vocab + (1-g) s placed on the region token ids), computed in log space (sums to 1 exactly)."""
    mixed = vocabulary_log_probs + F.logsigmoid(gate_logits)[..., None]           # (...,V) log g p_vocab
    pointed = similarity_log_probs + F.logsigmoid(-gate_logits)[..., None]         # (...,K) log (1-g) s
    on_regions = torch.logaddexp(mixed.index_select(-1, region_token_ids), pointed)
    return mixed.index_copy(-1, region_token_ids, on_regions)


class ExplanationDecoder(nn.Module):
    def __init__(self, config: REXConfig, region_size: int):
        super().__init__()
        self.config = config
        hidden = config.decoder_hidden_size
        self.word_embedding = nn.Embedding(config.explanation_vocab_size, config.word_embedding_size,
                                           padding_idx=config.pad_token_id)
        # The paper's decoder sees the question only through [CLS]; reading its tokens tells each step which
        # words it is explaining now ("the cup", then "on the right"), the words the pointer must match.
        self.question_attention = (RegionAttention(region_size, hidden, config.attention_size)
                                   if config.question_attention else None)
        self.attention_gru = AttentionGRU(region_size, hidden, config.word_embedding_size,
                                          region_size if config.question_attention else 0)
        self.region_attention = RegionAttention(region_size, hidden, config.attention_size)
        self.language_gru = LanguageGRU(region_size, hidden, config.explanation_vocab_size, config.dropout)
        self.structure_gate = (StructureGate(hidden, region_size, config.pointer_coverage)
                               if config.structure_gate else None)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("region_token_ids", torch.tensor(config.region_token_ids, dtype=torch.long),
                             persistent=False)
        # The embedding of `#3` alone says "region 3", not what region 3 shows (regions come in detector
        # order, different in every image). With region feedback the region last pointed at (the referent)
        # feeds every later step's input and, linearly, the word scores, so "the #3 ... is [white]" can read
        # region 3's colour (CopyNet's "selective read"). Both start at zero: the decoder starts as the paper's.
        self.region_feedback = self.referent_readout = None
        if config.region_feedback:
            self.region_feedback = nn.Linear(region_size, config.word_embedding_size, bias=False)
            self.referent_readout = nn.Linear(region_size, config.explanation_vocab_size, bias=False)
            nn.init.zeros_(self.region_feedback.weight)
            nn.init.zeros_(self.referent_readout.weight)
        token_regions = torch.full((config.explanation_vocab_size,), -1, dtype=torch.long)
        token_regions[self.region_token_ids] = torch.arange(len(config.region_token_ids))
        self.register_buffer("token_regions", token_regions, persistent=False)

    def prepare(self, cls, regions, text=None, text_mask=None) -> DecoderContext:
        reads_question = self.question_attention is not None
        if reads_question and text is None:
            raise ValueError("this decoder reads the question tokens (question_attention): pass text and text_mask")
        return DecoderContext(
            cls=cls,
            regions=regions,
            mean_region=regions.mean(dim=1),
            projected_regions=self.region_attention.project_regions(regions),
            projected_cls=self.language_gru.project_cls(cls),
            text=text if reads_question else None,
            text_mask=text_mask if reads_question else None,
            projected_text=self.question_attention.project_regions(text) if reads_question else None,
        )

    def initial_state(self, context: DecoderContext) -> DecoderState:
        zeros = context.cls.new_zeros(context.cls.shape[0], self.config.decoder_hidden_size)
        return DecoderState(zeros, zeros, torch.zeros_like(context.cls),
                            context.cls.new_zeros(context.cls.shape[0], len(self.config.region_token_ids)))

    def referents(self, tokens, context: DecoderContext, previous=None):
        """The state of the region last pointed at, up to and including each of ``tokens`` (B,T) -> (B,T,H),
        or for one step's tokens (B,) after the referents ``previous`` (B,H) -> (B,H); zeros before any `#k`."""
        regions = self.token_regions[tokens]                                                   # k or -1
        if tokens.dim() == 1:
            pointed = context.regions[torch.arange(len(tokens), device=tokens.device), regions.clamp(min=0)]
            return torch.where((regions >= 0)[:, None], pointed, previous)                     # (B,H)
        steps = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        last = torch.where(regions >= 0, steps, -1).cummax(dim=1).values                        # (B,T) position or -1
        region = regions.gather(1, last.clamp(min=0))                                          # (B,T)
        pointed = context.regions.gather(1, region.clamp(min=0)[..., None].expand(-1, -1, context.regions.shape[-1]))
        return pointed * (last >= 0)[..., None]                                                 # (B,T,H)

    def pointed_regions(self, tokens, previous=None):
        """1 for every region named by ``tokens`` (B,T) up to and including each position -> (B,T,K), or for one
        step's tokens (B,) after ``previous`` (B,K) -> (B,K)."""
        regions = self.token_regions[tokens]                                                   # k or -1
        named = F.one_hot(regions.clamp(min=0), len(self.config.region_token_ids)) * (regions >= 0)[..., None]
        named = named.to(self.word_embedding.weight.dtype)
        if tokens.dim() == 1:
            return torch.maximum(previous, named)
        return named.cummax(dim=1).values

    def embed(self, tokens, referents):
        """Word embeddings of ``tokens`` (B,) or (B,T), plus their referents' feedback (B,...,E)."""
        embedded = self.word_embedding(tokens)
        if self.region_feedback is not None:
            embedded = embedded + self.region_feedback(referents)
        return self.dropout(embedded)

    def step(self, previous_tokens, state: DecoderState, context: DecoderContext) -> DecoderState:
        """One step of both GRUs from the previous word ids (B,)."""
        referent = self.referents(previous_tokens, context, state.referent)
        pointed = self.pointed_regions(previous_tokens, state.pointed)
        state = self._step_embedded(self.embed(previous_tokens, referent), state, context)
        return DecoderState(state.attention, state.language, referent, pointed)

    def _step_embedded(self, previous_word, state: DecoderState, context: DecoderContext) -> DecoderState:
        question = None
        if self.question_attention is not None:
            question, _ = self.question_attention(context.projected_text, context.text, state.language,
                                                  context.text_mask)                          # (B,H)
        attention = self.attention_gru(context.mean_region, state.language, previous_word, state.attention, question)
        attended, _ = self.region_attention(context.projected_regions, context.regions, attention)
        language = self.language_gru(attended, context.projected_cls, attention, state.language)
        return DecoderState(attention, language, state.referent, state.pointed)

    def distribution(self, language_states, context: DecoderContext, referents=None, pointed=None):
        """(log p (...,V), gate probability (...) or None, region similarity (...,K) or None); ``referents``
        (...,H): the states of the regions last pointed at (`DecoderState.referent`), read by region feedback;
        ``pointed`` (...,K): the regions named so far (`DecoderState.pointed`), read by pointer coverage."""
        logits = self.language_gru.vocabulary_logits(language_states)
        if self.region_feedback is not None:
            logits = logits + self.referent_readout(referents)
        vocabulary = F.log_softmax(logits, dim=-1)
        if self.structure_gate is None:
            return vocabulary, None, None
        gate_logits, similarity = self.structure_gate(language_states, context.regions, pointed)
        log_probs = mix_distributions(vocabulary, gate_logits, similarity, self.region_token_ids)
        return log_probs, torch.sigmoid(gate_logits), similarity.exp()

    def forward(self, context: DecoderContext, explanation_tokens):
        """Teacher forcing (with optional scheduled sampling) over the T = L+1 target columns."""
        batch_size, steps = explanation_tokens.shape                                          # (B,T)
        start = explanation_tokens.new_full((batch_size, 1), self.config.start_token_id)
        inputs = torch.cat([start, explanation_tokens[:, :-1]], dim=1)                         # (B,T)
        referents = self.referents(inputs, context)                                            # (B,T,H)
        # Only pointer coverage reads the regions named so far in training (decoding tracks them step by step).
        coverage = self.structure_gate is not None and self.structure_gate.coverage is not None
        pointed = self.pointed_regions(inputs) if coverage else None                           # (B,T,K)
        embedded = self.embed(inputs, referents)                                               # (B,T,E)
        sampling = self.training and self.config.scheduled_sampling > 0
        state = self.initial_state(context)
        language_states = []
        for t in range(steps):
            previous_word = embedded[:, t]
            if sampling and t > 0:
                # Feed the model's own previous prediction to a random share of the questions (the referents
                # of the later steps still follow the ground-truth words).
                with torch.no_grad():
                    predicted = self.distribution(state.language, context, referents[:, t - 1],
                                                  None if pointed is None else pointed[:, t - 1])[0].argmax(dim=-1)
                use_own = torch.rand(batch_size, device=inputs.device) < self.config.scheduled_sampling
                own_word = self.embed(predicted, self.referents(predicted, context, referents[:, t - 1]))
                previous_word = torch.where(use_own[:, None], own_word, previous_word)
            state = self._step_embedded(previous_word, state, context)
            language_states.append(state.language)
        return self.distribution(torch.stack(language_states, dim=1), context, referents, pointed)  # (B,T,...)
