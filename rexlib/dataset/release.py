"""`python -m rexlib import-release DIR --gqa GQA --regions regions.h5 --out OUT`: use the official
GQA-REX json files instead of building explanations.

The release holds ``processed_explanation_{split}.json`` (raw explanations with ``(obj:ID)``
references) and/or ``converted_explanation_{split}.json`` (``#k`` / ``@k`` tokens). Every entry is
validated against the GQA question file (the question id must exist, its image must have a scene graph
and regions). Processed explanations are *regrounded* on our ``regions.h5`` with our grounding (the
release's ``#k`` came from the authors' boxes and their unclamped IoU); when the converted file is
there too, the report says how many of its explanations our regrounding reproduces exactly. A release
with converted explanations only is used as is (its ``#k`` tokens checked to lie in 0..35, ``@k`` in
1..16); its grounding records then hold the regions but no objects.

The store written is the same as ``build``'s (same files, same keys), so training does not care where
the explanations came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rexlib import gqa, layout
from rexlib.boxes import NUM_REGIONS
from rexlib.dataset.build import (
    AGREE,
    SKIP_GROUNDING,
    SKIP_PARSE,
    SKIP_REGIONS,
    SKIP_SCENE,
    Executed,
    Skipped,
    _families,
    _types,
    finalize,
    local_group_of,
    mine_categories,
    summary_table,
)
from rexlib.dataset.grounding import GroundingError, ImageGrounding, ground
from rexlib.dataset.store import MAX_EXPLANATION_LENGTH, read_region_boxes
from rexlib.io import read_json, write_json

RELEASE_SPLITS = ("train", "val", "testdev")


def _read_release(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: bad json ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        raise ValueError(f"{path}: expected a json object of question id -> explanation string")
    return data


def check_converted(tokens: list[str]) -> str | None:
    """The reason a converted explanation is malformed, or None."""
    if not tokens:
        return "empty explanation"
    for token in tokens:
        if len(token) > 1 and token[0] in "#@":
            number = token[1:]
            if not number.isdigit():
                return f"token {token!r} is neither a word nor a region/grid token"
            low, high = (0, NUM_REGIONS - 1) if token[0] == "#" else (1, 16)
            if not low <= int(number) <= high:
                return f"token {token!r} is out of range {token[0]}{low}..{token[0]}{high}"
    return None


def import_split(split: str, release_dir: Path, gqa_dir, regions) -> dict | None:
    """Records of one split (builder's record layout), or None when the release lacks the split."""
    processed = _read_release(release_dir / layout.processed_explanations_file(split))
    converted = _read_release(release_dir / layout.converted_explanations_file(split))
    if processed is None and converted is None:
        return None
    question_file, scene_file = gqa.split_files(gqa_dir, split)
    questions = gqa._read_object(question_file)
    scenes = gqa._read_object(scene_file)
    source_file = str(release_dir / (layout.processed_explanations_file(split) if processed is not None
                                     else layout.converted_explanations_file(split)))
    entries = processed if processed is not None else converted
    executed, skipped, images, same_as_release, operations = [], [], {}, 0, Counter()
    for index, (question_id, explanation) in enumerate(entries.items()):
        def skip(kind, reason, step=None, index=index, question_id=question_id):
            skipped.append(Skipped(index, question_id, source_file, step, kind, reason))

        raw = questions.get(question_id)
        if not isinstance(raw, dict):
            skip(SKIP_PARSE, f"question {question_id} is not in {question_file}")
            continue
        image_id = str(raw.get("imageId"))
        if image_id not in scenes:
            skip(SKIP_SCENE, f"image {image_id} has no scene graph in {scene_file}")
            continue
        row = regions.row.get(image_id)
        if row is None:
            skip(SKIP_REGIONS, f"image {image_id} is not in {regions.path}")
            continue
        try:
            scene = images.get(image_id) or gqa.parse_scene_graph(image_id, scenes[image_id], file=str(scene_file))
            question = gqa.parse_question(question_id, raw, file=str(question_file))
        except gqa.GQAError as error:
            skip(SKIP_PARSE, error.reason, error.step)
            continue
        images[image_id] = scene
        if processed is not None:
            try:
                grounded = ground(explanation, ImageGrounding(scene.objects, regions.boxes[row]), image_id=image_id)
            except GroundingError as error:
                skip(SKIP_GROUNDING, str(error))
                continue
            tokens, record = grounded.tokens, grounded.record()
            if converted is not None and converted.get(question_id) == " ".join(tokens):
                same_as_release += 1
        else:
            tokens = tuple(explanation.split())
            reason = check_converted(list(tokens))
            if reason:
                skip(SKIP_GROUNDING, reason)
                continue
            regions_used = [int(t[1:]) for t in tokens if t.startswith("#")]
            record = {"objects": [], "boxes": [], "regions": regions_used, "upper_bound": 0.0}
        # the release's explanation is taken as it is: it explains GQA's answer by construction
        executed.append(Executed(
            index, question_id, row, question.question, question.answer, _types(question.types),
            _families(question.program), AGREE, local_group_of(raw), explanation, tuple(tokens), record,
            question.answer, True,
        ))
        operations.update(step.operation for step in question.program)
    return {"executed": executed, "skipped": skipped, "questions": len(entries),
            "operations": dict(sorted(operations.items())),
            "release": {"processed": processed is not None, "converted": converted is not None,
                        "regrounded_same_as_release": same_as_release if processed and converted else None}}


def import_release(release_dir, gqa_dir, regions_path, out_dir, *, splits=RELEASE_SPLITS,
                   max_explanation_length: int = MAX_EXPLANATION_LENGTH, log=print) -> dict:
    """Validate the release's files, reground, and write the store; returns the reports per split."""
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    regions = read_region_boxes(regions_path)
    records = {}
    for split in splits:
        split_records = import_split(split, release_dir, gqa_dir, regions)
        if split_records is not None:
            records[split] = split_records
            log(f"[{split}] {len(split_records['executed'])} explanations imported, "
                f"{len(split_records['skipped'])} rejected")
    if not records:
        raise FileNotFoundError(f"{release_dir}: no processed_explanation_{{split}}.json or "
                                "converted_explanation_{split}.json files")
    # The attribute table for the evaluation, mined from the questions' programs as a build would.
    categories = mine_categories({split: tuple(gqa._read_object(path) for path in gqa.split_files(gqa_dir, split))
                                  for split in records})
    reports = finalize(out_dir, records, regions_path, max_explanation_length=max_explanation_length,
                       categories=categories, source=f"GQA-REX release {release_dir.resolve()}", log=log)
    for split, report in reports.items():
        report["release"] = records[split]["release"]
        write_json(out_dir / layout.build_report_file(split), report, indent=1)
    log(summary_table(reports))
    return reports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("release", help="folder with the official processed/converted_explanation_{split}.json")
    parser.add_argument("--gqa", required=True, help="GQA-layout folder (questions/, sceneGraphs/)")
    parser.add_argument("--regions", required=True, help="regions.h5")
    parser.add_argument("--out", required=True, help="output folder for the store")
    parser.add_argument("--splits", nargs="+", default=list(RELEASE_SPLITS))
    parser.add_argument("--max-explanation-length", type=int, default=MAX_EXPLANATION_LENGTH)


def run(args: argparse.Namespace) -> int:
    try:
        import_release(args.release, args.gqa, args.regions, args.out, splits=args.splits,
                       max_explanation_length=args.max_explanation_length)
    except (ValueError, FileNotFoundError) as error:
        print(f"import-release: {error}", file=sys.stderr)
        return 1
    return 0
