"""`python -m rexlib build`: GQA questions + scene graphs + regions.h5 -> the GQA-REX store.

Per question: parse the program (tolerantly: a bad record is recorded, not fatal), execute it over the
scene graph, compare the derived answer with GQA's, ground the raw explanation on the detector regions
and convert it to tokens. Then build the vocabularies from the training split and write the store
(docs/contracts.md).

Answer policy: the build explains GQA's answer. Where the scene graph cannot decide a step, the answer
decides it and the explanation states it; where the scene graph decides otherwise, the question is
kept with an explanation of GQA's answer and counted per family (``--drop-disagreements`` leaves
those out). Attribute categories (value -> category) are mined from the programs of every split built
(``filter color: white``, ``query color`` + answer, ...), merged with ``--attribute-categories FILE``.

The build runs in two stages so it can be parallel, sharded and resumable with identical bytes:

1. *process*: the questions of a split, in file order, are cut into fixed chunks; each chunk is
   processed (in this process or in a forked worker) into a partial file
   ``partial/{split}/chunk-NNNNN.pkl``. A rerun skips every chunk whose partial file exists (a
   manifest of the input files' sizes and times guards against stale partials).
2. *finalize*: the partial records are put back in file order (each carries its index in the file),
   the vocabularies are built from train, and the json files, ``{split}.h5``, the build reports and
   ``dataset.json`` are written.

With ``--shard i/n`` only stage 1 runs, on the question ids whose crc32 is ``i-1`` modulo ``n``, into
``DIR/shards/i-of-n/``; ``python -m rexlib merge --out DIR`` runs stage 2 over all shards. Because
records are ordered by their index in the file, a merged build and an unsharded one are identical.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import shutil
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from hashlib import sha1
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rexlib import gqa, layout
from rexlib.dataset.grounding import GroundingError, ImageGrounding, ground_compact
from rexlib.dataset.store import (
    MAX_EXPLANATION_LENGTH,
    MAX_QUESTION_LENGTH,
    Row,
    encode_split,
    read_region_boxes,
    write_dataset_json,
    write_split,
)
from rexlib.dataset.vocab import Vocabularies, build_vocabularies, tokenize_question
from rexlib.io import atomic_path, read_json, write_json

if TYPE_CHECKING:  # the CLI's types only: a build in code need not import argparse
    import argparse

DEFAULT_SPLITS = ("train", "val", "testdev")
CHUNK_SIZE = 5000  # questions per partial file: the unit of resuming and of work for one worker
PARTIAL_VERSION = 5  # bump when the partial record layout changes, so old partials are not reused

# How a question's answer was decided (Executed.decision).
AGREE, UNDECIDED, DISAGREE = "agree", "undecided", "disagree"

# Kinds of skipped questions in the report.
SKIP_PARSE, SKIP_SCENE, SKIP_REGIONS, SKIP_EXECUTION, SKIP_GROUNDING = (
    "parse", "scene graph", "regions", "execution", "grounding")


# ----------------------------------------------------------------------------------------------
# Stage 1: processing chunks


@dataclass
class SplitInput:
    """Everything the workers need for one split; set before forking so children inherit it."""

    split: str
    question_file: str
    scene_file: str
    items: list  # [(index in file, question id, raw record)] of this shard, file order
    scene_records: dict  # image id -> raw scene graph record
    regions: object  # store.RegionBoxes
    executor: Callable
    execution_error: type
    # Per-process caches: parsed scene graphs and per-image groundings (filled lazily).
    scenes: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)


_INPUTS: dict[str, SplitInput] = {}
_IN_MEMORY: dict[str, dict] = {}  # partial file path -> its records, for chunks processed in this process


def _scene(data: SplitInput, image_id: str):
    """Parsed scene graph of an image, or the reason it cannot be used (cached per process)."""
    cached = data.scenes.get(image_id)
    if cached is not None:
        return cached
    raw = data.scene_records.get(image_id)
    if raw is None:
        result = f"image {image_id} has no scene graph in {data.scene_file}"
    else:
        try:
            result = gqa.parse_scene_graph(image_id, raw, file=data.scene_file)
        except gqa.GQAError as error:
            result = error.reason
        else:
            if not result.objects:
                result = f"scene graph {image_id} is empty (no objects)"
    if len(data.scenes) > 200_000:
        data.scenes.clear()
    data.scenes[image_id] = result
    return result


def _image_grounding(data: SplitInput, scene: gqa.SceneGraph, row: int) -> ImageGrounding:
    cached = data.images.get(scene.image_id)
    if cached is None:
        if len(data.images) > 50_000:
            data.images.clear()
        cached = data.images[scene.image_id] = ImageGrounding(scene.objects, data.regions.boxes[row])
    return cached


def _prepare_groundings(data: SplitInput, items: Sequence) -> None:
    """The groundings of every usable image the items ask about, computed in one vectorised pass
    (numpy's per-call cost, paid once per chunk instead of once per image)."""
    wanted: dict[str, tuple] = {}
    regions_row = data.regions.row
    for _index, _question_id, raw in items:
        image_id = str(raw.get("imageId")) if isinstance(raw, dict) else None
        if image_id is None or image_id in data.images or image_id in wanted:
            continue
        scene, row = _scene(data, image_id), regions_row.get(image_id)
        if not isinstance(scene, str) and row is not None:
            wanted[image_id] = (scene.objects, row)
    if len(data.images) + len(wanted) > 50_000:
        data.images.clear()
    images = [(objects, data.regions.boxes[row]) for objects, row in wanted.values()]
    data.images.update(zip(wanted, ImageGrounding.for_images(images)))


def _families(program: Sequence[gqa.Step]) -> str:
    """The program's operation families in first-use order, ``"select,relate,query"``."""
    return ",".join(dict.fromkeys([step.family for step in program]))


def _types(types) -> dict:
    """GQA's three type labels only (the raw record may carry more)."""
    if not isinstance(types, dict):
        types = {}
    return {"structural": types.get("structural"), "semantic": types.get("semantic"), "detailed": types.get("detailed")}


def local_group_of(raw) -> str:
    """GQA's ``groups.local`` of a question record ("" when absent): GQA-OOD splits head / tail by it."""
    groups = raw.get("groups") if isinstance(raw, dict) else None
    local = groups.get("local") if isinstance(groups, dict) else None
    return str(local) if local else ""


class Executed(NamedTuple):
    """One explained question, as stage 1 hands it to stage 2 (a tuple: cheap to pickle by the million)."""

    index: int  # position in the question file: records are put back in file order
    question_id: str
    image_row: int  # row in regions.h5
    question: str
    answer: str | None  # GQA's answer
    types: dict
    families: str  # "select,relate,query"
    decision: str  # AGREE | UNDECIDED | DISAGREE: how the explained answer was decided
    local_group: str  # GQA's groups.local ("" when absent)
    raw_explanation: str
    tokens: tuple[str, ...]  # converted explanation
    grounding: dict  # the grounding record of grounding_{split}.json (tuples or lists: json writes both as lists)
    derived_answer: str | None  # what the scene graph alone derives (None when it cannot decide)
    agrees: bool


class Skipped(NamedTuple):
    """One question left out, with the reason the report names."""

    index: int
    question_id: str
    file: str
    step: int | None
    kind: str  # SKIP_PARSE | SKIP_SCENE | SKIP_REGIONS | SKIP_EXECUTION | SKIP_GROUNDING
    reason: str


_OPERATION_OF = attrgetter("operation")  # a step's operation name, read from C (one call per question)


def _normalise(answer) -> str:
    return str(answer).strip().lower() if answer is not None else ""


def process_items(data: SplitInput, items: Sequence) -> dict:
    """Process questions into records; never raises for one bad question.

    Returns ``{"executed": [Executed, ...], "skipped": [Skipped, ...], "operations": Counter}``
    (operations are counted per chunk).
    """
    executed, skipped, operation_names = [], [], []
    file, regions_row, scenes, images = data.question_file, data.regions.row, data.scenes, data.images
    families_of: dict[tuple, str] = {}  # operations -> their families (an operation names its family)
    _prepare_groundings(data, items)
    asked = None  # {image id: scene graph} of the image being asked about: GQA lists an image's questions together
    for index, question_id, raw in items:
        image_id = str(raw.get("imageId")) if isinstance(raw, dict) else None
        if image_id is None:
            skipped.append(Skipped(index, question_id, file, None, SKIP_PARSE, "record is not an object"))
            continue
        scene = scenes.get(image_id)
        if scene is None:
            scene = _scene(data, image_id)
        if isinstance(scene, str):
            skipped.append(Skipped(index, question_id, file, None, SKIP_SCENE, scene))
            continue
        row = regions_row.get(image_id)
        if row is None:
            skipped.append(Skipped(index, question_id, file, None, SKIP_REGIONS,
                            f"image {image_id} is not in {data.regions.path}"))
            continue
        if asked is None or image_id not in asked:
            asked = {image_id: scene}
        try:
            question = gqa.parse_question(question_id, raw, file=file, scene_graphs=asked)
        except gqa.GQAError as error:
            skipped.append(Skipped(index, question_id, file, error.step, SKIP_PARSE, error.reason))
            continue
        try:
            execution = data.executor(question, scene)
        except data.execution_error as error:
            skipped.append(Skipped(index, question_id, file, getattr(error, "step", None), SKIP_EXECUTION,
                            str(getattr(error, "reason", None) or error)))
            continue
        except Exception as error:  # noqa: BLE001 - a bug on one question must not stop the build
            skipped.append(Skipped(index, question_id, file, getattr(error, "step", None), SKIP_EXECUTION,
                            f"executor raised {type(error).__name__}: {error}"))
            continue
        image = images.get(image_id)
        try:
            tokens, grounding = ground_compact(execution.explanation, image if image is not None else
                                               _image_grounding(data, scene, row), image_id=image_id)
        except GroundingError as error:
            skipped.append(Skipped(index, question_id, file, None, SKIP_GROUNDING, str(error)))
            continue
        derived, answer = getattr(execution, "derived_answer", execution.answer), question.answer
        agrees = derived is not None and (derived == answer or _normalise(derived) == _normalise(answer))
        decision = AGREE if agrees else UNDECIDED if derived is None else DISAGREE
        operations = tuple(map(_OPERATION_OF, question.program))
        operation_names.extend(operations)
        families = families_of.get(operations)
        if families is None:
            families = families_of[operations] = _families(question.program)
        executed.append(Executed(
            index, question_id, row, question.question, answer, _types(question.types), families, decision,
            local_group_of(question.raw), execution.explanation, tokens, grounding, derived, agrees,
        ))
    return {"executed": executed, "skipped": skipped, "operations": Counter(operation_names)}


def _write_pickle(path: Path, value) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _write_chunk(path: Path, result: dict) -> None:
    """A chunk's records as plain tuples: pickle writes a named tuple through its class's reduce
    (three times the time of a plain one); :func:`_read_chunk` names them again."""
    _write_pickle(path, {"executed": [tuple(record) for record in result["executed"]],
                         "skipped": [tuple(record) for record in result["skipped"]],
                         "operations": result["operations"]})


def _read_chunk(path: Path) -> dict:
    with open(path, "rb") as handle:  # our own files, written by stage 1
        chunk = pickle.load(handle)
    return {"executed": [Executed._make(record) for record in chunk["executed"]],
            "skipped": [Skipped._make(record) for record in chunk["skipped"]],
            "operations": chunk["operations"]}


def _run_chunk(task: tuple[str, int, int, int, str]) -> dict:
    """Process items[start:stop] of a split and write the chunk's partial file (worker entry)."""
    split, _number, start, stop, path = task
    data = _INPUTS[split]
    result = process_items(data, data.items[start:stop])
    _write_chunk(Path(path), result)
    return result


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector for the build (reference counting still frees memory).

    The build holds millions of long-lived containers (the loaded json, the records), and every
    automatic full collection walks all of them again: on the 2,000-image world that was a third of
    the whole build's time. Processing makes no cyclic garbage (a young-generation collection after
    each chunk of the 2,000-image world found none, and cost 6% of the build), so nothing is
    collected until the build ends and the collector is back on. The loaded files are also frozen
    (``gc.freeze``) so that no collection walks them while they live.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _run_chunk_in_worker(task: tuple[str, int, int, int, str]) -> int:
    _run_chunk(task)
    return task[1]  # the records travel through the partial file, not the pipe


# ----------------------------------------------------------------------------------------------
# Inputs and partial-file bookkeeping


def _fingerprint(path: str | os.PathLike) -> list:
    stat = os.stat(path)
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def _digest(value) -> str:
    return sha1(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _read_questions(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise gqa.GQAError(f"cannot read questions: {error.strerror}", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise gqa.GQAError(f"bad json: {error}", file=str(path)) from None
    if not isinstance(data, dict):
        raise gqa.GQAError("file is not a JSON object keyed by question id", file=str(path))
    return data


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)`` (1-based), validated."""
    if text is None:
        return None
    try:
        part, count = (int(value) for value in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, for example 1/4") from None
    if count < 1 or not 1 <= part <= count:
        raise ValueError(f"--shard {text!r}: need 1 <= i <= n")
    return part, count


def in_shard(question_id: str, shard: tuple[int, int] | None) -> bool:
    """Stable across runs and machines: crc32 of the id, not Python's salted hash."""
    return shard is None or zlib.crc32(question_id.encode("utf-8")) % shard[1] == shard[0] - 1


def shard_dir(out_dir: str | os.PathLike, shard: tuple[int, int]) -> Path:
    return Path(out_dir) / "shards" / f"{shard[0]}-of-{shard[1]}"


def _prepare_partials(partial_dir: Path, manifest: dict) -> None:
    """Keep the partials of an interrupted run only if they came from the same inputs and settings."""
    manifest_path = partial_dir / "manifest.json"
    if partial_dir.exists():
        try:
            previous = read_json(manifest_path)
        except (OSError, ValueError):
            previous = None
        if previous != manifest:
            shutil.rmtree(partial_dir)
    partial_dir.mkdir(parents=True, exist_ok=True)
    if not manifest_path.exists():
        write_json(manifest_path, manifest, indent=1)


def _read_scene_records(scene_file: Path) -> dict:
    scene_records = read_json(scene_file)
    if not isinstance(scene_records, dict):
        raise gqa.GQAError("file is not a JSON object keyed by image id", file=str(scene_file))
    return scene_records


def process_split(split: str, gqa_dir, regions, work_dir: Path, *, workers: int = 1,
                  shard: tuple[int, int] | None = None, chunk_size: int = CHUNK_SIZE,
                  executor: Callable | None = None, execution_error: type | None = None,
                  categories=None, loaded: tuple[dict, dict] | None = None, log=print) -> Path:
    """Stage 1 for one split: write ``work_dir/partial/{split}/chunk-*.pkl``, then ``complete.json``.

    ``categories``: the mined :class:`~rexlib.program.attributes.CategoryTable` the executor reads;
    ``loaded``: the split's (raw questions, raw scene graphs) when already read.
    """
    question_file, scene_file = gqa.split_files(gqa_dir, split)
    for path in (question_file, scene_file):
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (split {split!r} in {gqa_dir})")
    partial_dir = work_dir / "partial" / split
    manifest = {
        "version": PARTIAL_VERSION, "split": split, "questions": _fingerprint(question_file),
        "scene_graphs": _fingerprint(scene_file), "regions": _fingerprint(regions.path),
        "chunk_size": chunk_size, "shard": list(shard) if shard else None,
        "categories": _digest(categories.to_json()) if categories is not None else None,
    }
    _prepare_partials(partial_dir, manifest)
    if (partial_dir / "complete.json").exists():
        log(f"[{split}] already processed: {partial_dir}")
        return partial_dir

    started = time.perf_counter()
    raw_questions, scene_records = loaded if loaded is not None else (
        _read_questions(question_file), _read_scene_records(scene_file))
    items = [(index, question_id, raw) for index, (question_id, raw) in enumerate(raw_questions.items())
             if in_shard(question_id, shard)]
    del raw_questions, loaded
    gc.freeze()  # the loaded files live until the split is done: keep the young collections off them
    if executor is None:
        from rexlib.program import ExecutionError, execute

        executor, execution_error = partial(execute, categories=categories), ExecutionError
    data = SplitInput(split, str(question_file), str(scene_file), items, scene_records, regions,
                      executor, execution_error or Exception)
    chunks = [(split, number, start, min(start + chunk_size, len(items)),
               str(partial_dir / f"chunk-{number:05d}.pkl"))
              for number, start in enumerate(range(0, len(items), chunk_size))]
    pending = [task for task in chunks if not Path(task[4]).exists()]
    log(f"[{split}] {len(items)} questions in {len(chunks)} chunks ({len(chunks) - len(pending)} done before)"
        f"; read in {time.perf_counter() - started:.1f}s")

    _INPUTS[split] = data
    try:
        context = _fork_context() if workers > 1 and len(pending) > 1 else None
        if context is None:
            for task in pending:
                _IN_MEMORY[task[4]] = _run_chunk(task)  # spares finalize reading it back
        else:
            # fork: the children inherit the loaded files instead of receiving them pickled.
            with context.Pool(min(workers, len(pending))) as pool:
                for _ in pool.imap_unordered(_run_chunk_in_worker, pending):
                    pass
    finally:
        _INPUTS.pop(split, None)
    write_json(partial_dir / "complete.json", {"chunks": len(chunks), "questions": len(items)})
    log(f"[{split}] processed in {time.perf_counter() - started:.1f}s")
    return partial_dir


def _fork_context():
    """multiprocessing's fork context, or None where the platform has none. Imported only here: a
    one-process build does not pay for importing multiprocessing (15 ms)."""
    import multiprocessing

    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def load_partials(partial_dirs: Sequence[Path]) -> dict:
    """Records of one split from one or more partial folders (shards), back in file order."""
    executed, skipped, questions, operations = [], [], 0, Counter()
    for partial_dir in partial_dirs:
        complete = partial_dir / "complete.json"
        if not complete.exists():
            raise FileNotFoundError(f"{partial_dir}: not complete (no complete.json); rerun the build")
        questions += read_json(complete)["questions"]
        for path in sorted(partial_dir.glob("chunk-*.pkl")):
            chunk = _IN_MEMORY.pop(str(path), None)
            if chunk is None:
                chunk = _read_chunk(path)
            executed.extend(chunk["executed"])
            skipped.extend(chunk["skipped"])
            operations.update(chunk["operations"])
    executed.sort(key=lambda record: record.index)
    skipped.sort(key=lambda record: record.index)
    return {"executed": executed, "skipped": skipped, "questions": questions,
            "operations": dict(sorted(operations.items()))}


# ----------------------------------------------------------------------------------------------
# Stage 2: finalize


def _mean(values) -> float:
    return round(float(np.mean(values)), 4) if len(values) else 0.0


# Kinds of skips that say the question itself is not well formed for this build (its record, its scene
# graph or its image's regions); the explained rate counts the rest.
_INPUT_SKIPS = (SKIP_PARSE, SKIP_SCENE, SKIP_REGIONS)


def split_report(split: str, records: dict, kept: list, vocabularies: Vocabularies | None, *,
                 max_explanation_length: int, drop_disagreements: bool, categories: dict | None = None,
                 encoded: str | None = None, converted: list[str] | None = None) -> dict:
    """The build report of one split: counts, every skip with its reason, agreement per family, statistics.

    ``converted``: each kept record's ``" ".join(tokens)``, when the caller has joined them already.
    """
    executed = records["executed"]
    lengths = [len(record.tokens) for record in kept]
    if converted is None:
        converted = [" ".join(record.tokens) for record in kept]
    # Tokens never hold spaces: a region token is the text's start or follows a space.
    grounded = [text.count(" #") + text.startswith("#") for text in converted]
    grid = [text.count(" @") + text.startswith("@") for text in converted]
    bounds = [record.grounding["upper_bound"] for record in kept if record.grounding["objects"]]
    by_family: dict[str, Counter] = {}
    for (families, decision), count in Counter((record.families, record.decision) for record in executed).items():
        for family in families.split(","):
            counts = by_family.get(family)
            if counts is None:
                counts = by_family[family] = Counter()
            counts[decision] += count
    skip_kinds = Counter(record.kind for record in records["skipped"])
    skip_reasons = Counter(record.reason for record in records["skipped"])
    decisions = Counter(record.decision for record in executed)
    well_formed = records["questions"] - sum(skip_kinds[kind] for kind in _INPUT_SKIPS)
    report = {
        "split": split,
        "questions": records["questions"],
        "well_formed": well_formed,
        "executed": len(executed),
        "explanations": len(kept),
        "explained_rate": round(len(kept) / well_formed, 6) if well_formed else 0.0,
        "skipped": len(records["skipped"]),
        "malformed_raw_explanations": skip_kinds[SKIP_GROUNDING],
        "answers": {"agree": decisions[AGREE], "decided_by_gqa_answer": decisions[UNDECIDED],
                    "disagree": decisions[DISAGREE]},
        "answer_disagreements": decisions[DISAGREE],
        "disagreements_dropped": drop_disagreements,
        "agreement": round(decisions[AGREE] / len(executed), 6) if executed else 0.0,
        "length": {
            "limit": max_explanation_length,
            "mean_tokens": _mean(lengths),
            "max_tokens": max(lengths, default=0),
            "over_limit": sum(length > max_explanation_length for length in lengths),
        },
        "grounded_tokens_per_explanation": _mean(grounded),
        "grid_tokens_per_explanation": _mean(grid),
        "explanations_with_objects": len(bounds),
        "upper_bound_mean": _mean(bounds),
        "encoded": encoded or layout.split_file(split),
        "vocabulary_size": ({"explanation": len(vocabularies.explanation), "answer": len(vocabularies.answer),
                             "question": len(vocabularies.question)} if vocabularies is not None else None),
        "operations": records["operations"],
        "families": {
            family: {"questions": sum(counts.values()), "agree": counts[AGREE],
                     "decided_by_gqa_answer": counts[UNDECIDED], "disagree": counts[DISAGREE],
                     "agreement": round(counts[AGREE] / sum(counts.values()), 6)}
            for family, counts in sorted(by_family.items())
        },
        "attribute_categories": categories,
        "skipped_by_kind": dict(sorted(skip_kinds.items())),
        "skipped_by_reason": dict(skip_reasons.most_common(50)),
        "skipped_questions": [
            {"file": file, "question_id": question_id, "step": step, "kind": kind, "reason": reason}
            for _index, question_id, file, step, kind, reason in records["skipped"]
        ],
        "disagreements": [
            {"question_id": record.question_id, "answer": record.answer, "derived_answer": record.derived_answer,
             "families": record.families}
            for record in executed if record.decision == DISAGREE
        ],
    }
    return report


def _vocabularies(out_dir: Path, kept: dict, vocab_file, log,
                  train_questions: list | None = None) -> tuple[Vocabularies | None, str]:
    """The vocabularies to encode with, and where they came from (or why there are none).

    ``train_questions``: the train questions' tokens, when the caller has them (else their texts are used).
    """
    vocab_path = out_dir / layout.VOCAB
    if "train" in kept:
        train = kept["train"]
        vocabularies = build_vocabularies((r.tokens for r in train), (r.answer for r in train if r.answer is not None),
                                          train_questions if train_questions is not None else (r.question for r in train))
        vocabularies.save(vocab_path)
        return vocabularies, "built from train"
    for path, source in ((vocab_file, "--vocab"), (vocab_path, "the existing")):
        if path is not None and Path(path).exists():
            log(f"vocabularies from {source} {path} (train is not in this build)")
            if Path(path).resolve() != vocab_path.resolve():
                shutil.copyfile(path, vocab_path)
            return Vocabularies.load(path), f"from {path}"
    if vocab_file is not None:
        raise FileNotFoundError(f"{vocab_file}: --vocab file does not exist")
    return None, (f"not written: no vocabulary (vocabularies come from train; build train into {out_dir} "
                  "or pass --vocab FILE)")


def finalize(out_dir, split_records: dict[str, dict], regions_path, *,
             max_explanation_length: int = MAX_EXPLANATION_LENGTH, drop_disagreements: bool = False,
             categories=None, vocab_file=None, source: str = "", log=print) -> dict:
    """Stage 2: vocabularies (from train), the json files, ``{split}.h5``, reports, ``dataset.json``.

    Without train in the build, ``{split}.h5`` is encoded with ``vocab_file`` or ``out_dir/vocab.json``;
    with neither, the json files and reports are written and the report says why the h5 is not.
    ``categories``: the mined attribute table (written as ``attribute_categories.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = {split: [r for r in records["executed"] if not (drop_disagreements and r.decision == DISAGREE)]
            for split, records in split_records.items()}
    # Train's questions are tokenized once, for its vocabulary and its h5; each distinct text once (GQA's
    # questions repeat: 13,760 texts for the world's 19,961 train questions). The lists are only read.
    tokenized: dict[str, list[str]] = {}

    def tokens_of(rows) -> list[list[str]]:
        out = []
        for row in rows:
            tokens = tokenized.get(row.question)
            if tokens is None:
                tokens = tokenized[row.question] = tokenize_question(row.question)
            out.append(tokens)
        return out

    question_tokens = {"train": tokens_of(kept["train"])} if "train" in kept else {}
    vocabularies, vocab_source = _vocabularies(out_dir, kept, vocab_file, log, question_tokens.get("train"))

    # Attribute value -> category, for the evaluation's attribute recall (rexlib/evaluation/evaluate.py reads it).
    category_summary = None
    if categories is not None:
        table, unknown = categories
        write_json(out_dir / layout.ATTRIBUTE_CATEGORIES, table.primary(), indent=1)
        category_summary = {"values": len(table), "categories": len(set(table.primary().values())),
                            "scene_graph_values_without_category": len(unknown),
                            "without_category": dict(list(unknown.items())[:100])}

    reports = {}
    encoded_splits = []
    for split, records in split_records.items():
        rows = kept[split]
        write_json(out_dir / layout.processed_explanations_file(split), {r.question_id: r.raw_explanation for r in rows})
        converted = [" ".join(r.tokens) for r in rows]  # written here and counted in the report
        write_json(out_dir / layout.converted_explanations_file(split),
                   dict(zip([r.question_id for r in rows], converted)))
        write_json(out_dir / layout.grounding_file(split), {r.question_id: r.grounding for r in rows})
        encoded = None
        if vocabularies is not None:
            arrays = encode_split(
                [Row(r.question_id, r.image_row, r.question, r.answer, r.tokens, r.types, r.families, r.local_group)
                 for r in rows], vocabularies,
                max_explanation_length=max_explanation_length, max_question_length=MAX_QUESTION_LENGTH,
                question_tokens=question_tokens.get(split) or tokens_of(rows))
            write_split(out_dir / layout.split_file(split), arrays)
            encoded_splits.append(split)
        else:
            encoded = f"{split}.h5 {vocab_source}"
            log(f"[{split}] {encoded}")
        report = split_report(split, records, rows, vocabularies, max_explanation_length=max_explanation_length,
                              drop_disagreements=drop_disagreements, categories=category_summary, encoded=encoded,
                              converted=converted)
        write_json(out_dir / layout.build_report_file(split), report, indent=1)
        reports[split] = report

    splits = encoded_splits
    previous = out_dir / layout.DATASET_INFO
    if previous.exists():  # keep splits built earlier into the same folder
        try:
            earlier = [s for s in read_json(previous).get("splits", []) if (out_dir / layout.split_file(s)).exists()]
        except (OSError, ValueError):
            earlier = []
        splits = earlier + [s for s in splits if s not in earlier]
    if splits:
        write_dataset_json(out_dir, regions_path, splits, max_explanation_length=max_explanation_length,
                           max_question_length=MAX_QUESTION_LENGTH, source=source)
    return reports


def summary_table(reports: dict[str, dict]) -> str:
    header = ("split", "questions", "explanations", "explained", "skipped", "agreement", "by answer", "disagree",
              "vocab", "mean len", "max len", "over limit", "#k/expl", "@k/expl", "upper bound")
    lines = [header]
    for split, r in reports.items():
        vocabulary = r["vocabulary_size"]["explanation"] if r.get("vocabulary_size") else "-"
        answers = r.get("answers", {})
        lines.append((split, str(r["questions"]), str(r["explanations"]), f"{r.get('explained_rate', 0.0):.4f}",
                      str(r["skipped"]), f"{r['agreement']:.4f}", str(answers.get("decided_by_gqa_answer", 0)),
                      str(answers.get("disagree", r.get("answer_disagreements", 0))), str(vocabulary),
                      f"{r['length']['mean_tokens']:.2f}", str(r["length"]["max_tokens"]),
                      str(r["length"]["over_limit"]), f"{r['grounded_tokens_per_explanation']:.2f}",
                      f"{r['grid_tokens_per_explanation']:.2f}", f"{r['upper_bound_mean']:.3f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in lines)


# ----------------------------------------------------------------------------------------------
# The whole build


def available_splits(gqa_dir) -> tuple[list[str], list[str]]:
    """The splits of a GQA-layout folder that have both a question file and scene graphs (train, val,
    testdev first), and the question files left out for want of scene graphs."""
    questions = sorted(Path(gqa_dir, layout.QUESTIONS_DIR).glob(f"*{layout.QUESTIONS_SUFFIX}"))
    found = [path.name.removesuffix(layout.QUESTIONS_SUFFIX) for path in questions]
    order = {split: index for index, split in enumerate(DEFAULT_SPLITS)}
    found.sort(key=lambda split: (order.get(split, len(order)), split))
    ready = [split for split in found if gqa.split_files(gqa_dir, split)[1].exists()]
    return ready, [split for split in found if split not in ready]


def mine_categories(inputs: dict[str, tuple[dict, dict]], mapping_file=None) -> tuple:
    """The attribute table from every split's programs (plus ``mapping_file``), and the scene graphs'
    values it leaves without a category (value -> objects carrying it, most frequent first)."""
    from rexlib.program.attributes import CategoryTable

    table = CategoryTable.mine(record for questions, _scenes in inputs.values() for record in questions.values())
    if mapping_file is not None:
        table = table.merged(CategoryTable.from_mapping(mapping_file))
    known, unknown = table.known(), {}
    for _questions, scenes in inputs.values():
        for scene in scenes.values():
            objects = scene.get("objects") if type(scene) is dict else None
            for obj in (objects.values() if type(objects) is dict else ()):
                attributes = obj.get("attributes") if type(obj) is dict else None
                if type(attributes) is list:
                    for value in attributes:
                        if type(value) is str and value not in known:
                            unknown[value] = unknown.get(value, 0) + 1
    return table, dict(sorted(unknown.items(), key=lambda item: (-item[1], item[0])))


def build(gqa_dir, regions_path, out_dir, splits: Sequence[str] | None = None, workers: int = 1,
          shard: tuple[int, int] | str | None = None, max_explanation_length: int = MAX_EXPLANATION_LENGTH,
          *, chunk_size: int = CHUNK_SIZE, drop_disagreements: bool = False, attribute_categories=None,
          vocab_file=None, executor: Callable | None = None, execution_error: type | None = None,
          log=print) -> dict:
    """Build GQA-REX from GQA-format files; returns the build reports per split.

    ``splits=None`` builds every split whose question and scene-graph files exist (and says which).
    ``regions_path=None`` reads ``gqa_dir/regions.h5``. With ``shard``, only processes this shard's
    questions into ``out_dir/shards/i-of-n`` and returns ``{}`` (run
    :func:`rexlib.dataset.merge.merge` when every shard is done). ``executor`` (default
    :func:`rexlib.program.execute` over the mined categories) and ``execution_error`` are injectable
    for tests.
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    if regions_path is not None and not Path(regions_path).exists():
        raise FileNotFoundError(f"{regions_path}: regions file missing")
    if splits is None:
        splits, without_scenes = available_splits(gqa_dir)
        if not splits:
            raise FileNotFoundError(f"{gqa_dir}: no split has both questions/{{split}}_balanced_questions.json "
                                    "and sceneGraphs/{split}_sceneGraphs.json")
        log(f"building the splits found in {gqa_dir}: {', '.join(splits)}" + (
            f" (no scene graphs for {', '.join(without_scenes)})" if without_scenes else ""))
    if regions_path is None:
        regions_path = Path(gqa_dir) / layout.REGIONS
        if not regions_path.exists():
            raise FileNotFoundError(f"{regions_path}: missing; pass --regions")
    with _collector_paused():
        return _build(gqa_dir, regions_path, out_dir, list(splits), workers, shard, max_explanation_length,
                      chunk_size=chunk_size, drop_disagreements=drop_disagreements,
                      attribute_categories=attribute_categories, vocab_file=vocab_file, executor=executor,
                      execution_error=execution_error, log=log)


def _load_split(gqa_dir, split: str) -> tuple[dict, dict]:
    question_file, scene_file = gqa.split_files(gqa_dir, split)
    for path in (question_file, scene_file):
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (split {split!r} in {gqa_dir})")
    return _read_questions(question_file), _read_scene_records(scene_file)


def _build(gqa_dir, regions_path, out_dir, splits, workers, shard, max_explanation_length, *, chunk_size,
           drop_disagreements, attribute_categories, vocab_file, executor, execution_error, log) -> dict:
    out_dir = Path(out_dir)
    regions = read_region_boxes(regions_path)
    work_dir = shard_dir(out_dir, shard) if shard else out_dir
    settings = {"gqa": str(Path(gqa_dir).resolve()), "regions": str(Path(regions_path).resolve()),
                "splits": list(splits), "max_explanation_length": max_explanation_length,
                "drop_disagreements": drop_disagreements,
                "attribute_categories": str(Path(attribute_categories).resolve()) if attribute_categories else None}
    settings["source"] = f"rexlib build from {settings['gqa']}"
    started = time.perf_counter()
    inputs = {split: _load_split(gqa_dir, split) for split in splits}
    table, unknown = mine_categories(inputs, attribute_categories)
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(work_dir / layout.ATTRIBUTE_CATEGORY_COUNTS, {"table": table.to_json(), "without_category": unknown}, indent=1)
    log(f"attribute categories: {len(table)} values mined from {', '.join(splits)}"
        f"{' and ' + str(attribute_categories) if attribute_categories else ''}; {len(unknown)} scene-graph "
        f"values without a category; {time.perf_counter() - started:.1f}s")
    partial_dirs = {}
    for split in splits:
        partial_dirs[split] = process_split(split, gqa_dir, regions, work_dir, workers=workers, shard=shard,
                                            chunk_size=chunk_size, executor=executor,
                                            execution_error=execution_error, categories=table,
                                            loaded=inputs.pop(split), log=log)
    if shard:
        write_json(work_dir / layout.SHARD_MANIFEST, {**settings, "shard": list(shard), "complete": True}, indent=1)
        log(f"shard {shard[0]}/{shard[1]} done: {work_dir}; run `python -m rexlib merge --out {out_dir}` "
            "when every shard is done")
        return {}
    records = {split: load_partials([partial_dirs[split]]) for split in splits}
    reports = finalize(out_dir, records, regions_path, max_explanation_length=max_explanation_length,
                       drop_disagreements=drop_disagreements, categories=(table, unknown), vocab_file=vocab_file,
                       source=settings["source"], log=log)
    log(summary_table(reports))
    return reports


def load_category_table(work_dir) -> tuple:
    """The (table, values without category) a build mined, from ``work_dir``."""
    from rexlib.program.attributes import CategoryTable

    saved = read_json(Path(work_dir) / layout.ATTRIBUTE_CATEGORY_COUNTS)
    return CategoryTable(saved["table"]), saved["without_category"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gqa", required=True, help="GQA-layout folder (questions/, sceneGraphs/)")
    parser.add_argument("--regions", default=None,
                        help="regions.h5 (detector boxes and features); default GQA/regions.h5")
    parser.add_argument("--out", required=True, help="output folder for the GQA-REX store")
    parser.add_argument("--splits", nargs="+", default=None,
                        help="splits to build (default: every split with questions and scene graphs)")
    parser.add_argument("--workers", type=int, default=1, help="processes (chunks of questions each)")
    parser.add_argument("--shard", default=None, help="i/n: process only this 1/n of the questions")
    parser.add_argument("--max-explanation-length", type=int, default=MAX_EXPLANATION_LENGTH)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="questions per partial file")
    parser.add_argument("--drop-disagreements", action="store_true",
                        help="leave out questions where the scene graph decides otherwise than GQA's answer "
                             "(kept, explaining GQA's answer, by default)")
    parser.add_argument("--attribute-categories", default=None, metavar="FILE",
                        help="GQA's attribute mapping ({'categorized': {category: [values]}}) merged with the "
                             "categories mined from the programs")
    parser.add_argument("--vocab", default=None, metavar="FILE",
                        help="vocab.json to encode {split}.h5 with when train is not built (default OUT/vocab.json)")


def run(args: argparse.Namespace) -> int:
    try:
        build(args.gqa, args.regions, args.out, splits=args.splits, workers=args.workers, shard=args.shard,
              max_explanation_length=args.max_explanation_length, chunk_size=args.chunk_size,
              drop_disagreements=args.drop_disagreements, attribute_categories=args.attribute_categories,
              vocab_file=args.vocab)
    except (ValueError, FileNotFoundError) as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    return 0
