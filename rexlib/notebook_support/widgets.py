"""An ipywidgets explorer of grounded explanations: pick a question, see where both explanations point.

`Explorer(examples, boxes, images_dir)` takes the table `rexlib.notebook_support.experiments.load_examples` returns (one
row per question, with a run's predictions when there is one). Filters narrow the questions by type and
by answer correctness; a dropdown and a slider pick one; the view shows the image with the ground-truth
boxes (solid) and the predicted boxes (dashed), the question, both explanations with their `#k` words
coloured like their boxes, and the answers.

Every control is a public attribute and every callback runs on ordinary `.value` changes, so a test (or
a notebook cell) can drive it without a browser: `explorer.type_filter.value = "verify"`, then read
`explorer.details.value` (HTML) and `explorer.image.value` (PNG bytes).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from rexlib.notebook_support import viz

ALL = "all"
CORRECTNESS = ("all", "correct", "wrong")
REQUIRED_COLUMNS = ("question_id", "question", "image_id", "image_index", "width", "height", "explanation_gt",
                    "answer_gt")


class Explorer:
    """Browse questions with their ground-truth and predicted grounded explanations."""

    def __init__(self, examples: pd.DataFrame, boxes: Callable[[int], np.ndarray],
                 images_dir: str | os.PathLike | None = None, type_column: str = "structural",
                 max_options: int = 1000):
        import ipywidgets as widgets

        missing = [column for column in REQUIRED_COLUMNS if column not in examples.columns]
        if missing:
            raise ValueError(f"Explorer: the examples table lacks the columns {', '.join(missing)} "
                             "(build it with rexlib.notebook_support.experiments.load_examples)")
        if examples.empty:
            raise ValueError("Explorer: the examples table is empty")
        self.examples = examples.reset_index(drop=True)
        self.boxes = boxes
        self.images_dir = images_dir
        self.type_column = type_column if type_column in examples.columns else None
        self.max_options = max_options
        self.has_predictions = "explanation_pred" in examples.columns and "answer_pred" in examples.columns
        self._updating = False

        types = sorted(self.examples[self.type_column].dropna().unique()) if self.type_column else []
        self.type_filter = widgets.Dropdown(options=[ALL, *types], value=ALL, description="type")
        self.correctness_filter = widgets.ToggleButtons(options=list(CORRECTNESS), value=ALL,
                                                        description="answer", disabled=not self.has_predictions)
        self.question = widgets.Dropdown(options=[], description="question",
                                         layout=widgets.Layout(width="95%"))
        self.slider = widgets.IntSlider(min=0, max=0, value=0, description="#", continuous_update=False)
        self.count = widgets.Label()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="520px"))
        self.details = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.type_filter, self.correctness_filter]),
            widgets.HBox([self.slider, self.count]),
            self.question,
            widgets.HBox([self.image, self.details]),
        ])
        self.type_filter.observe(self._on_filter, names="value")
        self.correctness_filter.observe(self._on_filter, names="value")
        self.question.observe(self._on_question, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.filtered = self.examples
        self._apply_filters()

    @classmethod
    def from_run(cls, data_dir, run_dir=None, split: str = "val", images_dir=None, **options) -> Explorer:
        """An explorer over a split of a store and (optionally) a run's predictions on it."""
        from rexlib.notebook_support.experiments import ImageRowBoxes, load_examples

        return cls(load_examples(data_dir, split, run_dir), ImageRowBoxes(data_dir), images_dir, **options)

    # ------------------------------------------------------------------ driving it from code

    def select(self, question_id: str) -> None:
        """Show one question (it must pass the current filters)."""
        if question_id not in set(self.filtered["question_id"]):
            raise KeyError(f"question {question_id} is not among the {len(self.filtered)} filtered questions")
        self.question.value = question_id

    def set_filters(self, question_type: str | None = None, correctness: str | None = None) -> None:
        """Change the filters at once (None keeps a filter as it is)."""
        self._updating = True
        try:
            if question_type is not None:
                self.type_filter.value = question_type
            if correctness is not None:
                self.correctness_filter.value = correctness
        finally:
            self._updating = False
        self._apply_filters()

    @property
    def current(self) -> pd.Series | None:
        """The row shown now (None when no question passes the filters)."""
        if self.question.value is None:
            return None
        return self.filtered[self.filtered["question_id"] == self.question.value].iloc[0]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ callbacks

    def _on_filter(self, _change) -> None:
        if not self._updating:
            self._apply_filters()

    def _apply_filters(self) -> None:
        frame = self.examples
        if self.type_column and self.type_filter.value != ALL:
            frame = frame[frame[self.type_column] == self.type_filter.value]
        if self.has_predictions and self.correctness_filter.value != ALL:
            wanted = self.correctness_filter.value == "correct"
            frame = frame[(frame["answer_pred"] == frame["answer_gt"]) == wanted]
        self.filtered = frame.head(self.max_options).reset_index(drop=True)
        total = len(frame)
        shown = len(self.filtered)
        self.count.value = f"{total} questions" + (f" (first {shown} listed)" if shown < total else "")
        self._updating = True
        try:
            options = [(f"{row.question_id}: {row.question}", row.question_id)
                       for row in self.filtered.itertuples(index=False)]
            self.question.options = options
            self.question.value = options[0][1] if options else None
            self.slider.max = max(0, shown - 1)
            self.slider.value = 0
            self.slider.disabled = shown == 0
        finally:
            self._updating = False
        self._show()

    def _on_question(self, _change) -> None:
        if self._updating:
            return
        positions = np.flatnonzero(self.filtered["question_id"].to_numpy() == self.question.value)
        if len(positions):
            self._updating = True
            try:
                self.slider.value = int(positions[0])
            finally:
                self._updating = False
        self._show()

    def _on_slider(self, change) -> None:
        if self._updating or self.filtered.empty:
            return
        self.question.value = self.filtered["question_id"].iloc[int(change["new"])]

    # ------------------------------------------------------------------ rendering

    def _show(self) -> None:
        row = self.current
        if row is None:
            self.image.value = viz.png_bytes(viz.blank_image((8, 8)))
            self.details.value = "<i>no question passes these filters</i>"
            return
        image_bytes, details = render_example(row, self.boxes(int(row["image_index"])), self.images_dir)
        self.image.value = image_bytes
        self.details.value = details


def render_example(row: pd.Series, boxes: np.ndarray, images_dir=None) -> tuple[bytes, str]:
    """The explorer's view of one question: PNG bytes of the image with boxes, and the HTML beside it."""
    ground_truth = row.get("explanation_gt") or ""
    predicted = row.get("explanation_pred")
    predicted = predicted if isinstance(predicted, str) else None
    colors = viz.assign_colors(ground_truth, predicted or "")
    image = viz.load_image(images_dir, row["image_id"], (row["width"], row["height"]))
    picture = (viz.draw_comparison(image, ground_truth, predicted, boxes, colors) if predicted is not None
               else viz.draw_explanation(image, ground_truth, boxes, colors))
    lines = [f"<b>{html.escape(str(row['question']))}</b>",
             f"<small>question {html.escape(str(row['question_id']))}, image {html.escape(str(row['image_id']))}"
             + (f", type {html.escape(str(row['structural']))}" if "structural" in row else "") + "</small>",
             f"<div>ground truth (solid): {viz.explanation_html(ground_truth, colors)}</div>"]
    if predicted is not None:
        lines.append(f"<div>predicted (dashed): {viz.explanation_html(predicted, colors)}</div>")
    answer_line = f"answer: <b>{html.escape(str(row['answer_gt']))}</b>"
    if "answer_pred" in row and isinstance(row["answer_pred"], str):
        verdict = "correct" if row["answer_pred"] == row["answer_gt"] else "wrong"
        mark = "&#10003;" if verdict == "correct" else "&#10007;"
        answer_line += (f", predicted <b class='rex-{verdict}'>{html.escape(row['answer_pred'])}</b> "
                        f"{mark} ({verdict})")
    lines.append(f"<div>{answer_line}</div>")
    if "grounding" in row and pd.notna(row["grounding"]):
        lines.append(f"<div>grounding score: {row['grounding']:.1f}</div>")
    return viz.png_bytes(picture), "<div class='rex-details'>" + "<br>".join(lines) + "</div>"
