"""Colour-matched boxes and explanation HTML."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rexlib.notebook_support import viz


def test_grounded_tokens_and_shared_colours():
    assert viz.grounded_tokens("the #3 is left of the #7 near @2 and the #3") == ["#3", "#7", "@2"]
    assert not viz.is_grounded_token("#") and not viz.is_grounded_token("#a") and viz.is_grounded_token("@16")
    colors = viz.assign_colors("the #3 and #7", "the #7 and #9")
    assert list(colors) == ["#3", "#7", "#9"]
    assert len(set(colors.values())) == 3


def test_grid_cells_cover_the_image_row_by_row():
    assert viz.grid_cell_box(1, 400, 200) == (0, 0, 100, 50)
    assert viz.grid_cell_box(6, 400, 200) == (100, 50, 200, 100)
    assert viz.grid_cell_box(16, 400, 200) == (300, 150, 400, 200)
    with pytest.raises(ValueError, match="@17"):
        viz.grid_cell_box(17, 400, 200)


def test_token_boxes_and_drawing_use_each_tokens_colour():
    boxes = np.zeros((36, 4), np.float32)
    boxes[3] = (10, 10, 50, 50)
    boxes[7] = (60, 20, 90, 70)
    mapping = viz.token_boxes("the #3 on the #7 in @16 and #40", boxes, (100, 80))
    assert mapping == {"#3": (10.0, 10.0, 50.0, 50.0), "#7": (60.0, 20.0, 90.0, 70.0), "@16": (75.0, 60.0, 100.0, 80.0)}
    colors = {"#3": "#ff0000", "#7": "#0000ff"}
    picture = viz.draw_boxes(Image.new("RGB", (100, 80), "white"), {k: mapping[k] for k in colors}, colors,
                             line_width=2, label=False)
    pixels = picture.load()
    assert pixels[30, 10] == (255, 0, 0)  # top edge of #3
    assert pixels[90, 45] == (0, 0, 255)  # right edge of #7
    assert pixels[30, 30] == (255, 255, 255)  # inside stays untouched


def test_explanation_html_colours_region_words_and_escapes_text():
    colors = {"#3": "#123456"}
    text = viz.explanation_html("the #3 is <b> , so", colors, object_words={"#3": "table"})
    assert 'background:#123456' in text and "#3 table" in text
    assert "&lt;b&gt;" in text and "<b>" not in text


def test_load_image_falls_back_to_a_blank_canvas(tmp_path):
    Image.new("RGB", (20, 10), "red").save(tmp_path / "img1.png")
    assert viz.load_image(tmp_path, "img1", (5, 5)).getpixel((0, 0)) == (255, 0, 0)
    blank = viz.load_image(tmp_path, "missing", (30, 40))
    assert blank.size == (30, 40)
    assert viz.png_bytes(blank).startswith(b"\x89PNG")


def test_plots_save_png(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"model": ["REX", "REX", "baseline", "baseline"], "Accuracy": [50.0, 52.0, 40.0, 44.0],
                          "fraction": [0.1, 1.0, 0.1, 1.0]})
    ax = viz.bar_plot(frame, "model", "Accuracy", title="accuracy")
    path = viz.save_figure(ax.figure, tmp_path / "figures" / "bar.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    frame["initialisation"] = frame["model"]
    ax = viz.transfer_curve(frame, y="Accuracy")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10%", "100%"]
