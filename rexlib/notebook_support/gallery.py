"""Galleries: which questions to show (from different images and families, their objects visible) and
the figures that show them, for every notebook that shows examples (02, 04).

* Choosing: `pick_gallery` spreads a gallery over images and answering families (`answering_family`),
  keeping only questions whose explanation objects (`explanation_objects`) show in the picture
  (`ObjectVisibility`); `unfaithful_examples` picks explanations that state something false.
* Drawing: `comparison_figure` (ground-truth boxes solid, predicted dashed, per question), and
  `statement_figure` (each statement's regions green when true, red when false).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rexlib.notebook_support import viz


def first_explanation(value) -> str:
    """A store file's explanation entry (a string, or a list whose first item is the reference)."""
    return value[0] if isinstance(value, list) and value else (value if isinstance(value, str) else "")


def answering_family(families: str) -> str:
    """The family that gives a program its answer: the last one it uses ("select,relate,query" -> "query")."""
    used = [family for family in str(families).split(",") if family]
    return used[-1] if used else ""


def explanation_objects(data_dir: str | os.PathLike, split: str) -> dict[str, tuple[str, ...]]:
    """question id -> the scene-graph object ids its raw explanation refers to (``(obj:ID)``), in order."""
    from rexlib.dataset.grounding import OBJECT, GroundingError, tokenize_raw

    path = Path(data_dir) / f"processed_explanation_{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (is '{split}' a built split of {data_dir}?)")
    found = {}
    for question_id, explanation in json.loads(path.read_text(encoding="utf-8")).items():
        try:
            tokens = tokenize_raw(first_explanation(explanation))
        except GroundingError:
            tokens = []
        found[question_id] = tuple(dict.fromkeys(i for kind, value in tokens if kind == OBJECT for i in value))
    return found


class ObjectVisibility:
    """Whether objects show in their picture: ``visible(image_id, object_ids) -> bool``.

    For the embedded world (a folder with `world.json`) the world's renderer draws each picture's
    object mask and an object counts as visible when at least `threshold` of its silhouette shows it
    (or what it wears or holds). For real GQA there is no mask: an object counts as visible when the
    scene graph has it with a box of at least `min_side` pixels each way. A folder without scene
    graphs gives nothing to check against: every object counts as visible there.
    """

    def __init__(self, world_dir: str | os.PathLike, threshold: float = 0.6, min_side: int = 8):
        self.world_dir = Path(world_dir)
        self.threshold, self.min_side = threshold, min_side
        self.rendered = (self.world_dir / "world.json").is_file()
        self._scenes: dict | None = None
        self._shares: dict[str, dict[str, float]] = {}

    def scenes(self) -> dict:
        if self._scenes is None:
            self._scenes = {}
            for path in sorted((self.world_dir / "sceneGraphs").glob("*_sceneGraphs.json")):
                self._scenes.update(json.loads(path.read_text(encoding="utf-8")))
        return self._scenes

    def shares(self, image_id: str) -> dict[str, float]:
        """object id -> the share of it that shows (1.0 or 0.0 without a mask)."""
        if image_id not in self._shares:
            scene = self.scenes().get(image_id, {"objects": {}})
            if self.rendered:
                from rexlib.world.render import visibility

                self._shares[image_id] = {object_id: dressed for object_id, (_own, dressed)
                                          in visibility(scene).items()} if scene["objects"] else {}
            else:
                self._shares[image_id] = {object_id: float(min(obj["w"], obj["h"]) >= self.min_side)
                                          for object_id, obj in scene["objects"].items()}
        return self._shares[image_id]

    def __call__(self, image_id: str, object_ids: Iterable[str]) -> bool:
        """True when the question refers to at least one object and every one of them shows."""
        object_ids = tuple(object_ids)
        if not self.scenes():
            return bool(object_ids)
        shares = self.shares(image_id)
        return bool(object_ids) and all(shares.get(object_id, 0.0) >= self.threshold for object_id in object_ids)


def pick_gallery(frame: pd.DataFrame, count: int, *, visible=None, objects=None, mix_correct: bool = False,
                 seed: int | None = None) -> pd.DataFrame:
    """Up to `count` rows of `frame` (columns `question_id`, `image_id`, `families`; `correct` for
    `mix_correct`) for a gallery: each from another image, and from another answering family as long
    as there are families left, in the frame's order (shuffled first when `seed` is given).

    visible: `visible(image_id, object_ids) -> bool` (an `ObjectVisibility`) with `objects`
    (question id -> object ids, a mapping or a function): only rows whose explanation objects show.
    mix_correct: alternate right and wrong answers (right, wrong, right, ...) while both last.
    """
    if count <= 0 or frame.empty:
        return frame.head(0)
    order = list(range(len(frame)))
    if seed is not None:
        order = [int(k) for k in np.random.default_rng(seed).permutation(len(frame))]
    if mix_correct:
        correct = frame["correct"].to_numpy(dtype=bool)
        streams = [[k for k in order if correct[k]], [k for k in order if not correct[k]]]
    else:
        streams = [order]
    look_up = objects.get if isinstance(objects, dict) else objects
    chosen: list[int] = []
    images: set = set()
    families: set = set()
    shows: dict[int, bool] = {}

    def acceptable(k: int, new_family: bool) -> bool:
        row = frame.iloc[k]
        if k in chosen or row["image_id"] in images:
            return False
        if new_family and answering_family(row["families"]) in families:
            return False
        if visible is not None and k not in shows:
            shows[k] = visible(row["image_id"], (look_up(row["question_id"]) or ()) if look_up else ())
        return shows.get(k, True)

    slot = 0
    while len(chosen) < count:
        stream_order = [streams[(slot + j) % len(streams)] for j in range(len(streams))]
        found = next((k for new_family in (True, False) for stream in stream_order for k in stream
                      if acceptable(k, new_family)), None)
        if found is None:
            break
        chosen.append(found)
        images.add(frame.iloc[found]["image_id"])
        families.add(answering_family(frame.iloc[found]["families"]))
        slot += 1
    return frame.iloc[chosen]


# ------------------------------------------------------------------------------------------ figures


def comparison_titles(rows: pd.DataFrame, model: str = "REX", mark_correct: bool = False) -> list[str]:
    """One title per row: the question, the ground truth and the model's explanation, each with its answer."""
    return [(f"{'right' if row.correct else 'wrong'}: " if mark_correct else "")
            + f"{row.question}\nGT: {row.explanation_gt} ({row.answer_gt})\n{model}: {row.explanation_pred} "
              f"({row.answer_pred})" for row in rows.itertuples()]


def comparison_figure(rows: pd.DataFrame, boxes: Callable[[int], np.ndarray], images_dir, *, model: str = "REX",
                      columns: int = 3, title: str = "", mark_correct: bool = False):
    """A grid of the rows' pictures, ground-truth boxes solid and predicted ones dashed (None when no rows).

    rows: `rexlib.notebook_support.experiments.load_examples` rows (with a run's predictions);
    boxes: image row -> its (36, 4) detector boxes (`experiments.RegionBoxes`)."""
    pictures = [viz.draw_comparison(viz.load_image(images_dir, row.image_id, (row.width, row.height)),
                                    row.explanation_gt, row.explanation_pred, boxes(row.image_index))
                for row in rows.itertuples()]
    return _grid(pictures, comparison_titles(rows, model, mark_correct), columns, title)


def unfaithful_examples(frame: pd.DataFrame, judgements: Mapping, count: int) -> pd.DataFrame:
    """Up to `count` rows whose explanation states something false (`judgements`: question id ->
    `rexlib.evaluation.metrics.faithfulness` judgement), one per image, right answers first: an
    explanation can be false while the answer is right."""
    false = frame[[qid in judgements and judgements[qid].false > 0 for qid in frame["question_id"]]]
    varied = false.drop_duplicates("image_id")
    shown = pd.concat([varied[varied["correct"]].head(count // 2 or 1), varied[~varied["correct"]].head(count)])
    return shown.drop_duplicates("image_id").head(count)


def statement_figure(rows: pd.DataFrame, boxes: Callable[[int], np.ndarray], images_dir, judgements: Mapping, *,
                     model: str = "REX", columns: int = 3, title: str = ""):
    """A grid of the rows' pictures with each statement's regions marked by its verdict (None when no rows)."""
    pictures = [viz.mark_statements(viz.load_image(images_dir, row.image_id, (row.width, row.height)),
                                    boxes(row.image_index), judgements[row.question_id].marks())
                for row in rows.itertuples()]
    titles = [f"{row.question}\n{model}: {row.explanation_pred} ({row.answer_pred}; GQA: {row.answer_gt})"
              for row in rows.itertuples()]
    return _grid(pictures, titles, columns, title)


def _grid(pictures: Iterable, titles: list[str], columns: int, title: str):
    pictures = list(pictures)
    if not pictures:
        return None
    figure = viz.image_grid(pictures, titles, columns=min(columns, len(pictures)))
    if title:  # above the panels' own two-line titles, not on them (saved with a tight bounding box)
        figure.suptitle(title, y=1.0, va="bottom", fontsize="x-large")
    return figure
