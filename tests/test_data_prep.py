"""LXMERT tsv -> regions.h5: padding, truncation, malformed rows named, script entry point."""

import base64
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from rexlib.dataset.regions_tsv import convert_tsv
from rexlib.dataset.store import read_region_boxes

ROOT = Path(__file__).resolve().parents[1]


def _row(image_id, count, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    boxes = np.cumsum(rng.uniform(1, 5, (count, 4)), axis=1).astype(np.float32)
    features = rng.normal(size=(count, dim)).astype(np.float32)
    fields = [image_id, "240", "320", "", "", "", "", str(count),
              base64.b64encode(boxes.tobytes()).decode(), base64.b64encode(features.tobytes()).decode()]
    return "\t".join(fields), boxes, features


def test_tsv_to_regions(tmp_path):
    short, short_boxes, _ = _row("img1", 10)
    long, long_boxes, long_features = _row("img2", 40, seed=1)
    bad_count, _, _ = _row("img3", 5)
    bad_count = bad_count.replace("\t5\t", "\t7\t")  # 20 box floats are not 7 rows of 4
    lines = [short, long, "img4\t240\tbroken", bad_count, "img5\t1\t1\t\t\t\t\t2\tnot-base64!\tx", short]
    tsv = tmp_path / "features.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "regions.h5"
    report = convert_tsv([tsv], out, log=lambda *_: None)
    assert (report.images, report.padded, report.truncated, report.duplicates) == (2, 1, 1, 1)
    assert [(line, image_id) for _file, line, image_id, _reason in report.malformed] == [
        (3, "img4"), (4, "img3"), (5, "img5")]
    assert "tab-separated" in report.malformed[0][3] and "multiple" in report.malformed[1][3]
    with h5py.File(out) as handle:
        assert handle["boxes"].shape == (2, 36, 4) and handle["boxes"].dtype == np.float32
        assert handle["features"].shape == (2, 36, 8) and handle["features"].dtype == np.float16
        assert handle["sizes"][()].tolist() == [[320, 240], [320, 240]]
        np.testing.assert_array_equal(handle["boxes"][0, :10], short_boxes)
        assert not handle["boxes"][0, 10:].any()  # padded with zero boxes
        np.testing.assert_array_equal(handle["boxes"][1], long_boxes[:36])
        np.testing.assert_allclose(handle["features"][1], long_features[:36], rtol=1e-3, atol=1e-3)
    regions = read_region_boxes(out)
    assert regions.image_ids == ("img1", "img2") and regions.row["img2"] == 1


def test_script_runs(tmp_path):
    row, _, _ = _row("img9", 3)
    tsv = tmp_path / "a.tsv"
    tsv.write_text(row + "\n")
    result = subprocess.run([sys.executable, str(ROOT / "data_prep" / "lxmert_tsv_to_regions.py"), str(tsv),
                             "--out", str(tmp_path / "r.h5")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "1 images" in result.stdout
