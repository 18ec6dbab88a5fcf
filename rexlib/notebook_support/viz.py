"""Pictures of GQA-REX: images with grounded boxes, colour-matched explanations, and the notebooks' plots.

A grounded explanation points at regions with `#k` tokens (region k of the detector's 36 boxes) and at
grid cells with `@k` tokens (cell k of a 4x4 grid, 1..16 row by row). Every drawing here gives each such
token one colour, used both for its box on the image and for the word in the explanation's HTML, so a
reader can match "the #3 is on the left of the #7" to the two boxes at a glance.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rexlib.boxes import GRID_SIZE, grid_cell_box
from rexlib.io import atomic_path

# Twelve colours that stay distinct on photographs and on the world's flat renders (seaborn's
# "bright" palette plus four darker ones); explanations rarely hold more than four region tokens.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
    "#f032e6", "#9a6324", "#469990", "#800000", "#808000", "#000075",
)


def is_grounded_token(token: str) -> bool:
    """True for `#k` (a region) and `@k` (a grid cell) tokens."""
    return len(token) > 1 and token[0] in "#@" and token[1:].isdigit()


def tokens_of(explanation: str | Sequence[str]) -> list[str]:
    """An explanation as a list of tokens (accepts the space-separated string of the store files)."""
    return explanation.split() if isinstance(explanation, str) else list(explanation)


def grounded_tokens(explanation: str | Sequence[str]) -> list[str]:
    """The `#k` / `@k` tokens of an explanation, in order of first appearance, without repeats."""
    seen: dict[str, None] = {}
    for token in tokens_of(explanation):
        if is_grounded_token(token):
            seen.setdefault(token, None)
    return list(seen)


def assign_colors(*explanations: str | Sequence[str]) -> dict[str, str]:
    """One colour per grounded token over all the explanations given (in order of first appearance).

    Passing the ground truth and the prediction together makes a region both point at share its colour.
    """
    colors: dict[str, str] = {}
    for explanation in explanations:
        for token in grounded_tokens(explanation):
            if token not in colors:
                colors[token] = PALETTE[len(colors) % len(PALETTE)]
    return colors


def token_boxes(explanation: str | Sequence[str], region_boxes: np.ndarray,
                image_size: tuple[int, int]) -> dict[str, tuple[float, float, float, float]]:
    """Grounded token -> pixel box: `#k` -> region k's detector box, `@k` -> grid cell k.

    region_boxes: (36, 4) x1,y1,x2,y2 in pixels (a row of regions.h5); image_size: (width, height).
    Tokens pointing outside the available regions are skipped (a badly trained model can emit them).
    """
    width, height = image_size
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for token in grounded_tokens(explanation):
        index = int(token[1:])
        if token[0] == "#" and index < len(region_boxes):
            boxes[token] = tuple(float(value) for value in region_boxes[index])
        elif token[0] == "@" and 1 <= index <= GRID_SIZE * GRID_SIZE:
            boxes[token] = grid_cell_box(index, width, height)
    return boxes


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def draw_boxes(image: Image.Image, boxes: Mapping[str, Sequence[float]], colors: Mapping[str, str],
               line_width: int | None = None, dashed: bool = False, label: bool = True) -> Image.Image:
    """A copy of `image` with each token's box outlined in its colour and labelled with the token.

    dashed=True draws the outline in dashes (used for predicted boxes next to the ground truth's).
    """
    picture = image.convert("RGB").copy()
    draw = ImageDraw.Draw(picture)
    line_width = line_width or max(2, round(min(picture.size) / 120))
    font = _font(max(10, round(min(picture.size) / 22)))
    for token, box in boxes.items():
        color = colors.get(token, PALETTE[0])
        x1, y1, x2, y2 = (float(value) for value in box)
        if dashed:
            _dashed_rectangle(draw, (x1, y1, x2, y2), color, line_width)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=color, width=line_width)
        if label:
            text_box = draw.textbbox((x1, y1), token, font=font)
            lift = text_box[3] - text_box[1] + 2
            top = y1 - lift if y1 - lift >= 0 else y1
            draw.rectangle((x1, top, x1 + text_box[2] - text_box[0] + 4, top + lift), fill=color)
            draw.text((x1 + 2, top), token, fill="white", font=font)
    return picture


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box, color: str, width: int, dash: int = 8) -> None:
    x1, y1, x2, y2 = box
    for start, end in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
        pieces = max(1, int(length // dash))
        for piece in range(0, pieces, 2):
            a, b = piece / pieces, min(piece + 1, pieces) / pieces
            draw.line([(start[0] + (end[0] - start[0]) * a, start[1] + (end[1] - start[1]) * a),
                       (start[0] + (end[0] - start[0]) * b, start[1] + (end[1] - start[1]) * b)],
                      fill=color, width=width)


def draw_explanation(image: Image.Image, explanation: str | Sequence[str], region_boxes: np.ndarray,
                     colors: Mapping[str, str] | None = None, dashed: bool = False) -> Image.Image:
    """The image with the boxes an explanation's `#k` / `@k` tokens point at, coloured per token."""
    colors = colors if colors is not None else assign_colors(explanation)
    return draw_boxes(image, token_boxes(explanation, region_boxes, image.size), colors, dashed=dashed)


def draw_comparison(image: Image.Image, ground_truth: str, predicted: str, region_boxes: np.ndarray,
                    colors: Mapping[str, str] | None = None) -> Image.Image:
    """Ground-truth boxes solid, predicted boxes dashed, both coloured with one shared colour table."""
    colors = colors if colors is not None else assign_colors(ground_truth, predicted)
    picture = draw_explanation(image, ground_truth, region_boxes, colors)
    return draw_explanation(picture, predicted, region_boxes, colors, dashed=True)


VERDICT_COLORS = {True: "#2ca02c", False: "#d62728", None: "#7f7f7f"}  # true, false, unknown
VERDICT_MARKS = {True: "true", False: "FALSE", None: "unknown"}


def mark_statements(image: Image.Image, region_boxes: np.ndarray,
                    marks: Sequence[tuple[str, Sequence[int], bool | None]]) -> Image.Image:
    """The regions each statement names, outlined by its verdict (green true, red false, grey unknown),
    and the statements listed under the image, the false ones marked FALSE.

    marks: (statement text, its regions k, verdict), e.g. ``Judgement.marks()`` of
    ``rexlib.evaluation.metrics.faithfulness``. A region named by a false statement is drawn red over any other.
    """
    picture = image.convert("RGB")
    verdict_of: dict[int, bool | None] = {}
    for _, regions, verdict in marks:
        for region in regions:
            if verdict_of.get(region, True) is not False:
                verdict_of[region] = verdict
    for region, verdict in sorted(verdict_of.items(), key=lambda item: item[1] is False):
        if 0 <= region < len(region_boxes):
            picture = draw_boxes(picture, {f"#{region}": region_boxes[region]}, {f"#{region}": VERDICT_COLORS[verdict]},
                                 dashed=verdict is None)
    font = _font(max(10, round(min(picture.size) / 24)))
    line_height = max(12, round(min(picture.size) / 20))
    canvas = Image.new("RGB", (picture.width, picture.height + line_height * max(1, len(marks)) + 4), "white")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for row, (text, _, verdict) in enumerate(marks):
        draw.text((4, picture.height + 2 + row * line_height), f"{VERDICT_MARKS[verdict]}: {text}",
                  fill=VERDICT_COLORS[verdict], font=font)
    return canvas


def explanation_html(explanation: str | Sequence[str], colors: Mapping[str, str] | None = None,
                     object_words: Mapping[str, str] | None = None) -> str:
    """HTML for an explanation with each grounded token shown as a coloured label.

    object_words optionally maps a token to the word to show beside it (e.g. "#3" -> "table").
    """
    colors = colors if colors is not None else assign_colors(explanation)
    parts = []
    for token in tokens_of(explanation):
        if is_grounded_token(token):
            color = colors.get(token, "#777777")
            word = f" {html.escape(object_words[token])}" if object_words and token in object_words else ""
            parts.append(f'<span class="rex-region" style="background:{color};color:white;'
                         f'padding:0 3px;border-radius:3px;font-weight:bold">{html.escape(token)}{word}</span>')
        else:
            parts.append(html.escape(token))
    return '<span class="rex-explanation">' + " ".join(parts) + "</span>"


def blank_image(image_size: tuple[int, int], color: str = "#d9d9d9") -> Image.Image:
    """A plain canvas, for datasets whose images are not on disk (real GQA features without images)."""
    width, height = (max(1, int(value)) for value in image_size)
    return Image.new("RGB", (width, height), color)


def load_image(images_dir: str | os.PathLike | None, image_id: str, image_size: tuple[int, int]) -> Image.Image:
    """`images_dir/{image_id}.png` (or .jpg), or a blank canvas of the right size when it is missing."""
    if images_dir is not None:
        for suffix in (".png", ".jpg", ".jpeg"):
            path = Path(images_dir) / f"{image_id}{suffix}"
            if path.is_file():
                with Image.open(path) as image:
                    return image.convert("RGB")
    return blank_image(image_size)


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG (what ipywidgets.Image and IPython.display.Image take)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- plots (seaborn on matplotlib)

def _pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not _in_notebook():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def new_axes(width: float = 6.0, height: float = 3.6, columns: int = 1):
    """A figure and its axes in the notebooks' common style."""
    import seaborn as sns

    plt = _pyplot()
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axes = plt.subplots(1, columns, figsize=(width * columns, height), squeeze=False)
    return figure, list(axes[0])


def save_figure(figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a figure as png atomically (temp file, then rename) and return its path."""
    path = Path(path)
    with atomic_path(path, keep_ending=True) as temporary:  # matplotlib picks the format by the ending
        figure.savefig(temporary, dpi=dpi, bbox_inches="tight")
    return path


def legend_outside(ax):
    """Move an axis' legend to the right of it, so it hides none of the lines (save_figure keeps it in)."""
    import seaborn as sns

    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return ax


def bar_plot(frame, x: str, y: str, hue: str | None = None, title: str = "", ax=None, horizontal: bool = False,
             error: str | None = "sd", top: int | None = None):
    """A seaborn bar plot (mean and standard deviation over repeated rows, e.g. seeds)."""
    import seaborn as sns

    if ax is None:
        _, (ax,) = new_axes(width=7.0 if horizontal else 6.0, height=max(3.0, 0.28 * frame[x].nunique())
                            if horizontal else 3.6)
    if top is not None:
        order = frame.groupby(x)[y].mean().sort_values(ascending=False).index[:top]
        frame = frame[frame[x].isin(order)]
    else:
        order = None
    arguments = {"data": frame, "hue": hue, "errorbar": error, "ax": ax, "order": order}
    if horizontal:
        sns.barplot(x=y, y=x, orient="h", **arguments)
    else:
        sns.barplot(x=x, y=y, **arguments)
        ax.tick_params(axis="x", rotation=30)
    ax.set_title(title)
    return ax


def histogram(frame, column: str, hue: str | None = None, title: str = "", ax=None, discrete: bool = True):
    """A seaborn histogram of one column (integer columns get one bar per value)."""
    import seaborn as sns

    if ax is None:
        _, (ax,) = new_axes()
    sns.histplot(data=frame, x=column, hue=hue, discrete=discrete, multiple="dodge" if hue else "layer",
                 shrink=0.8, ax=ax)
    ax.set_title(title)
    return ax


def learning_curves(frame, x: str = "step", y: str = "loss", hue: str = "run", style: str | None = None,
                    title: str = "", ax=None):
    """Lines of a metric over training, one per run (the concatenated `metrics.csv` of several runs);
    style (e.g. `split`) draws training and validation rows with different dashes."""
    import seaborn as sns

    if ax is None:
        _, (ax,) = new_axes()
    style = style if style in frame.columns and frame[style].nunique() > 1 else None
    sns.lineplot(data=frame, x=x, y=y, hue=hue, style=style, ax=ax, marker="o" if len(frame) < 60 else None)
    ax.set_title(title)
    return ax


def transfer_curve(frame, x: str = "fraction", y: str = "accuracy", hue: str = "initialisation",
                   title: str = "VQA accuracy against the share of answers used", ax=None):
    """Accuracy against the fraction of answers seen, one line per initialisation, spread over seeds."""
    import seaborn as sns

    if ax is None:
        _, (ax,) = new_axes()
    sns.lineplot(data=frame, x=x, y=y, hue=hue, marker="o", errorbar="sd", ax=ax)
    ax.set_xscale("log")
    ticks = sorted(frame[x].unique())
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{100 * value:g}%" for value in ticks])
    ax.set_title(title)
    return ax


def scatter(frame, x: str, y: str, hue: str | None = None, title: str = "", ax=None):
    """A seaborn scatter plot with a small jitter-free style (used for per-question relations)."""
    import seaborn as sns

    if ax is None:
        _, (ax,) = new_axes()
    sns.scatterplot(data=frame, x=x, y=y, hue=hue, ax=ax, alpha=0.6)
    ax.set_title(title)
    return ax


def image_grid(images: Iterable[Image.Image], titles: Iterable[str] = (), columns: int = 3,
               width: float = 4.0):
    """A matplotlib figure showing PIL images side by side (for successes and failures)."""
    plt = _pyplot()
    images, titles = list(images), list(titles)
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, width * 0.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index])
            if index < len(titles):
                ax.set_title(titles[index], fontsize=9, wrap=True)
    figure.tight_layout()
    return figure
