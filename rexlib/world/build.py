"""Write a whole world to disk in GQA's formats, streaming, atomically, reproducibly.

Images are generated one at a time and each file is appended to as we go (json objects are written
entry by entry, regions.h5 in chunks), so memory stays flat however many images are asked for.
Every file is written under a temporary name and moved into place when complete; ``world.json`` is
written last, so a directory with a manifest always holds a complete world.

Each image draws from its own random streams, seeded by (seed, image index, purpose): the scene,
its questions, and its detections do not depend on any other image or on each other's draws.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from rexlib import layout
from rexlib.io import AtomicTarget, write_bytes
from rexlib.world.detector import FeatureSpace, RegionWriter, detect
from rexlib.world.ontology import IMAGE_HEIGHT, IMAGE_WIDTH
from rexlib.world.questions import families, generate_questions
from rexlib.world.render import object_mask, render_scene
from rexlib.world.scenes import generate_scene

FORMAT_VERSION = 2  # bump when a change makes worlds built with the same seed differ
SPLITS = ("train", "val", "testdev")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SCENE_STREAM, QUESTION_STREAM, DETECTOR_STREAM, SPLIT_STREAM = 0, 1, 2, 3
FAMILY_ORDER = ("select", "relate", "filter", "query", "verify", "choose", "exist", "and", "or",
                "same", "different", "common", "compare")


class WorldExistsError(RuntimeError):
    """The output directory holds a world built with other parameters."""


class JsonObjectWriter:
    """Writes one json object ``{key: value, ...}`` entry by entry into a temporary file."""

    def __init__(self, path: Path):
        self.path = path
        self.target = AtomicTarget(path)
        self.file = open(self.target.temporary, "w", encoding="utf-8")  # noqa: SIM115 (open across add() calls)
        self.file.write("{")
        self.first = True

    def add(self, key: str, value: object) -> None:
        self.file.write(("" if self.first else ", ") + json.dumps(key) + ": " + json.dumps(value))
        self.first = False

    def close(self) -> None:
        self.file.write("}\n")
        self.file.close()
        self.target.commit()

    def abort(self) -> None:
        self.file.close()
        self.target.discard()


def assign_splits(images: int, seed: int) -> list[str]:
    """train / val / testdev for each image index: a seeded shuffle cut 80/10/10."""
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(images)
    cuts = [round(images * SPLIT_FRACTIONS[0]), round(images * (SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]))]
    split_of = [""] * images
    for rank, index in enumerate(order):
        split_of[int(index)] = SPLITS[0] if rank < cuts[0] else SPLITS[1] if rank < cuts[1] else SPLITS[2]
    return split_of


def question_id_for(index: int, number: int) -> str:
    """GQA-like digit string ids: image index then the question's number within the image."""
    return f"{index:06d}{number:02d}"


def _png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def build_world(out_dir: str | Path, images: int = 2000, seed: int = 0, feature_dim: int = 256,
                render: bool = True, overwrite: bool = False, progress: bool = True,
                log: Callable[[str], None] = print, masks: bool = False) -> dict:
    """Write the synthetic world to ``out_dir`` and return its manifest (``world.json``).

    ``masks`` also writes each picture's object mask, ``masks/{image_id}.png`` (8-bit grey: 0 for
    background, k + 1 where the picture shows the k-th object of the image's scene graph).

    An identical world already there (same parameters) is left alone; a different one is an error
    unless ``overwrite``.
    """
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    if feature_dim < 1:
        raise ValueError(f"feature_dim must be at least 1, got {feature_dim}")
    out = Path(out_dir)
    parameters = {
        "format_version": FORMAT_VERSION, "images": images, "seed": seed, "feature_dim": feature_dim,
        "render": render, "masks": masks, "image_size": [IMAGE_WIDTH, IMAGE_HEIGHT], "splits": dict(zip(SPLITS, SPLIT_FRACTIONS)),
    }
    manifest_path = out / layout.WORLD_MANIFEST
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        if existing.get("parameters") == parameters and not overwrite:
            log(f"{out}: an identical world is already built (seed {seed}, {images} images); nothing to do")
            return existing
        if not overwrite:
            raise WorldExistsError(
                f"{manifest_path}: holds a world built with {existing.get('parameters')}, not {parameters}; "
                "pass --overwrite (overwrite=True) to replace it")
        manifest_path.unlink()  # from here on the directory is not a complete world
        shutil.rmtree(out / "images", ignore_errors=True)
        shutil.rmtree(out / "masks", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / layout.QUESTIONS_DIR).mkdir(exist_ok=True)
    (out / layout.SCENE_GRAPHS_DIR).mkdir(exist_ok=True)
    if render:
        (out / "images").mkdir(exist_ok=True)
    if masks:
        (out / "masks").mkdir(exist_ok=True)

    split_of = assign_splits(images, seed)
    question_writers = {s: JsonObjectWriter(out / layout.questions_file(s)) for s in SPLITS}
    scene_writers = {s: JsonObjectWriter(out / layout.scene_graphs_file(s)) for s in SPLITS}
    region_writer = RegionWriter(out / layout.REGIONS, images, feature_dim)
    space = FeatureSpace(seed, feature_dim)
    counts = {s: Counter() for s in SPLITS}
    family_counts = {s: Counter() for s in SPLITS}
    operation_counts: Counter = Counter()
    detailed_counts: Counter = Counter()
    answers: Counter = Counter()
    try:
        for index in tqdm(range(images), desc="build-world", unit="image", disable=not progress):
            split = split_of[index]
            image_id, scene = generate_scene(np.random.default_rng([seed, index, SCENE_STREAM]), index)
            questions = generate_questions(scene, np.random.default_rng([seed, index, QUESTION_STREAM]))
            scene_writers[split].add(image_id, scene)
            for number, record in enumerate(questions):
                question_writers[split].add(question_id_for(index, number), {"imageId": image_id, **record})
                used = families(record["semantic"])
                family_counts[split].update(used)
                operation_counts.update({step["operation"] for step in record["semantic"]})
                detailed_counts[record["types"]["detailed"]] += 1
                answers[record["answer"]] += 1
                if record["answer"] in ("yes", "no"):
                    counts[split][record["answer"]] += 1
            counts[split].update(images=1, objects=len(scene["objects"]), questions=len(questions),
                                 relations=sum(len(o["relations"]) for o in scene["objects"].values()))
            boxes, features, _confidences = detect(scene, np.random.default_rng([seed, index, DETECTOR_STREAM]), space)
            region_writer.add(image_id, boxes, features, (scene["width"], scene["height"]))
            if render:
                write_bytes(out / "images" / f"{image_id}.png", _png_bytes(render_scene(scene)))
            if masks:
                write_bytes(out / "masks" / f"{image_id}.png", _png_bytes(Image.fromarray(object_mask(scene))))
    except BaseException:
        for writer in (*question_writers.values(), *scene_writers.values()):
            writer.abort()
        region_writer.abort()
        raise
    for writer in (*question_writers.values(), *scene_writers.values()):
        writer.close()
    region_writer.close()

    keys = ("images", "objects", "relations", "questions", "yes", "no")
    split_counts = {s: {k: counts[s][k] for k in keys} for s in SPLITS}
    total = {k: sum(split_counts[s][k] for s in SPLITS) for k in keys}
    manifest = {
        "name": "rex synthetic GQA world",
        "parameters": parameters,
        "counts": {
            "total": total,
            "splits": split_counts,
            "families": {s: {f: family_counts[s][f] for f in FAMILY_ORDER} for s in SPLITS},
            "operations": dict(sorted(operation_counts.items())),
            "detailed_types": dict(sorted(detailed_counts.items())),
            "distinct_answers": len(answers),
        },
        "files": {
            "questions": {s: layout.questions_file(s) for s in SPLITS},
            "scene_graphs": {s: layout.scene_graphs_file(s) for s in SPLITS},
            "regions": layout.REGIONS,
            "images": "images/{image_id}.png" if render else None,
            "masks": "masks/{image_id}.png" if masks else None,
        },
    }
    write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return manifest


def format_counts(manifest: dict) -> str:
    """A plain-text table of the manifest's counts (what `build-world` prints and the README records)."""
    counts = manifest["counts"]
    lines = [f"{'split':<9}{'images':>9}{'objects':>10}{'relations':>11}{'questions':>11}{'yes':>9}{'no':>9}"]
    for split, row in [*counts["splits"].items(), ("total", counts["total"])]:
        lines.append(f"{split:<9}{row['images']:>9}{row['objects']:>10}{row['relations']:>11}"
                     f"{row['questions']:>11}{row['yes']:>9}{row['no']:>9}")
    total = counts["total"]
    yes_no = total["yes"] + total["no"]
    lines.append(f"yes/no balance: {total['yes']} yes / {total['no']} no "
                 f"({100 * total['yes'] / max(1, yes_no):.1f}% yes); "
                 f"{total['questions'] / max(1, total['images']):.1f} questions per image; "
                 f"{counts['distinct_answers']} distinct answers")
    lines.append("")
    lines.append("questions using each operation family:")
    lines.append(f"{'family':<11}" + "".join(f"{s:>9}" for s in counts["families"]) + f"{'total':>9}")
    for family in FAMILY_ORDER:
        per_split = [counts["families"][s][family] for s in counts["families"]]
        lines.append(f"{family:<11}" + "".join(f"{n:>9}" for n in per_split) + f"{sum(per_split):>9}")
    return "\n".join(lines)
