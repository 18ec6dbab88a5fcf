"""Grounding: tokenizer, IoU (hand-computed), grid cells at edges, upper bound, conversion."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from rexlib.boxes import grid_cell, iou_matrix, paired_iou, union_iou, union_iou_small
from rexlib.dataset.grounding import (
    ABSENT,
    OBJECT,
    POSITION,
    WORD,
    GroundingError,
    ImageGrounding,
    ground,
    tokenize_raw,
)


def test_iou_hand_computed():
    # 10x10 box and a 10x10 box shifted by 5 on x: intersection 5*10=50, union 150.
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    # Contained: 4x4 inside 10x10 -> 16/100.
    assert iou_matrix([[0, 0, 10, 10]], [[2, 2, 6, 6]])[0, 0] == pytest.approx(0.16)
    # Identical boxes.
    assert iou_matrix([[1, 2, 3, 4]], [[1, 2, 3, 4]])[0, 0] == pytest.approx(1.0)


def test_iou_non_overlapping_is_zero_not_positive():
    # Apart on both axes: the unclamped reference formula gives (10-20)*(10-20)=100 > 0 "intersection"
    # and IoU 100/(100+100-100) = 1.0. Clamped, it is 0.
    a, b = [0, 0, 10, 10], [20, 20, 30, 30]
    unclamped = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
    assert unclamped > 0  # the reference's bug, reproduced by hand
    assert iou_matrix([a], [b])[0, 0] == 0.0
    # Apart on one axis only (negative times positive) and touching edges: 0 too.
    assert iou_matrix([a], [[20, 0, 30, 10]])[0, 0] == 0.0
    assert iou_matrix([a], [[10, 0, 20, 10]])[0, 0] == 0.0
    # Zero-area boxes never divide by zero.
    assert iou_matrix([[5, 5, 5, 5]], [[5, 5, 5, 5]])[0, 0] == 0.0


def test_iou_matrix_shape():
    assert iou_matrix(np.zeros((3, 4)), np.ones((36, 4))).shape == (3, 36)


@pytest.mark.parametrize("x, y, cell", [
    (0.0, 0.0, 1), (0.25, 0.25, 1), (0.2501, 0.0, 2), (0.5, 0.0, 2), (0.75, 0.0, 3), (0.76, 0.0, 4),
    (1.0, 0.0, 4), (0.0, 1.0, 13), (1.0, 1.0, 16), (0.3, 0.6, 10), (-0.2, 1.7, 13),
])
def test_grid_cells(x, y, cell):
    assert grid_cell(x, y) == cell


def test_union_iou():
    # One box against one box is the plain IoU.
    assert union_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]]) == pytest.approx(50 / 150)
    # Two touching halves together equal the whole box.
    assert union_iou([[0, 0, 5, 10], [5, 0, 10, 10]], [[0, 0, 10, 10]]) == pytest.approx(1.0)
    # Overlapping predicted boxes are not counted twice: union area 150, target [0,10]x[0,10] -> 100/150.
    assert union_iou([[0, 0, 10, 10], [5, 0, 15, 10]], [[0, 0, 10, 10]]) == pytest.approx(100 / 150)
    # Two separate targets, one found exactly: 100 / 200.
    assert union_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [50, 50, 60, 60]]) == pytest.approx(0.5)
    assert union_iou([], [[0, 0, 1, 1]]) == 0.0


def test_tokenize_scans_references_and_punctuation():
    tokens = tokenize_raw("The (obj:12) is on the left of the (obj*:tennis racket), so the answer is (0.1,0.9).")
    assert tokens == [
        (WORD, "the"), (OBJECT, ("12",)), (WORD, "is"), (WORD, "on"), (WORD, "the"), (WORD, "left"),
        (WORD, "of"), (WORD, "the"), (ABSENT, "tennis racket"), (WORD, ","), (WORD, "so"), (WORD, "the"),
        (WORD, "answer"), (WORD, "is"), (POSITION, (0.1, 0.9)),
    ]
    assert tokenize_raw("(obj:1,2) are red")[0] == (OBJECT, ("1", "2"))


@pytest.mark.parametrize("text", ["the (obj:1 is", "the obj:1) is", "a (foo) b", "(obj:)", "((obj:1))"])
def test_tokenize_rejects_malformed(text):
    with pytest.raises(GroundingError):
        tokenize_raw(text)


def _scene(**objects):
    return {object_id: SimpleNamespace(name=name, box=box) for object_id, (name, box) in objects.items()}


def test_ground_converts_and_records():
    regions = np.zeros((36, 4), np.float32)
    regions[3] = [0, 0, 10, 10]
    regions[7] = [50, 50, 70, 70]
    regions[8] = [40, 40, 60, 60]
    objects = _scene(a=("cup", (0, 0, 10, 12)), b=("table", (50, 50, 70, 70)), c=("cat", (200, 200, 210, 210)))
    image = ImageGrounding(objects, regions)
    grounded = ground("the (obj:a) is on the (obj:b) , not the (obj*:plate) at (0.9,0.1)", image)
    assert grounded.converted == "the #3 is on the #7 , not the plate at @4"
    assert grounded.objects == ("a", "b")
    assert grounded.regions == (3, 7)
    # union of regions #3 #7 vs union of objects a b: intersection 100+400, union 120+400
    assert grounded.upper_bound == pytest.approx(500 / 520)
    assert grounded.record()["regions"] == [3, 7]
    # An object overlapping no region keeps its name and region -1.
    lonely = ground("the (obj:c) is black", image)
    assert lonely.converted == "the cat is black" and lonely.regions == (-1,) and lonely.upper_bound == 0.0
    # A single object uses its best IoU directly.
    assert ground("the (obj:a)", image).upper_bound == pytest.approx(100 / 120)
    with pytest.raises(GroundingError, match="object zz"):
        ground("the (obj:zz)", image, image_id="img1")


@pytest.mark.parametrize("text", [
    "", "plain words .", "the (obj:a)", "(obj:a)(obj:b) end", "the (obj:a) is on the (obj:b) , at (0.9,0.1)",
    "a ( obj : a ) b", "there is no (obj*:cat)", "the (obj:a , b) are", "(0.5,0.5)",
    "the (obj:a", "the obj:a)", "a (obj:a) ) b", "a ((obj:a)) b", "a (obj:(a)) b", "a (obj:a) (", "x ) (obj:a)",
    "a (foo) b", "a (foo) b )", "a (obj:) b", "a (obj*:) b", "a (obj:zz) b (", "a (obj:zz) (foo)", "a (1,2,3)",
])
def test_ground_reads_the_pieces_and_errors_of_the_scan(text):
    # ground splits the text with one regex; tokenize_raw scans it piece by piece. Both must see the
    # same pieces, and a malformed text must fail with the scan's own error.
    regions = np.zeros((36, 4), np.float32)
    regions[3] = [0, 0, 10, 10]
    image = ImageGrounding(_scene(a=("cup", (0, 0, 10, 12)), b=("old table", (500, 500, 510, 510))), regions)
    try:
        pieces = tokenize_raw(text)
    except GroundingError as error:
        with pytest.raises(GroundingError) as raised:
            ground(text, image)
        assert str(raised.value) == str(error)
        return
    unknown = [i for kind, value in pieces if kind == OBJECT for i in value if i not in ("a", "b")]
    if unknown:
        with pytest.raises(GroundingError, match=f"object {unknown[0]},"):
            ground(text, image)
        return
    expected = []
    for kind, value in pieces:
        if kind == OBJECT:
            expected += [word for i in value for word in (["#3"] if i == "a" else ["old", "table"])]
        elif kind == POSITION:
            expected.append(f"@{grid_cell(*value)}")
        else:
            expected += value.split() if kind == ABSENT else [value]
    assert list(ground(text, image).tokens) == expected


def test_small_union_iou_matches_the_general_one():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, m = rng.integers(1, 3, 2)
        corners = rng.uniform(0, 100, (n + m, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(0, 60, (n + m, 2))], axis=1)
        a, b = [tuple(box) for box in boxes[:n]], [tuple(box) for box in boxes[n:]]
        assert union_iou_small(a, b) == pytest.approx(union_iou(a, b), abs=1e-9)
    assert union_iou_small([(0, 0, 10, 10), (5, 0, 15, 10)], [(0, 0, 10, 10)]) == pytest.approx(100 / 150)


def test_two_box_union_area_is_the_general_sum_bit_for_bit():
    # _union_area unrolls the two-box case; its float must be exactly the level-by-level sum's
    # (the upper bounds written in grounding_{split}.json may not change by one bit).
    from rexlib.boxes import _union_area, _union_area_by_levels

    rng = np.random.default_rng(1)
    cases = [((0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 15.0, 10.0)), ((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0)),
             ((0.0, 0.0, 0.0, 10.0), (0.0, 0.0, 5.0, 5.0)), ((1.0, 1.0, 2.0, 2.0), (1.0, 1.0, 2.0, 2.0)),
             ((3.0, 3.0, 1.0, 1.0), (0.0, 0.0, 4.0, 4.0))]
    for _ in range(2000):
        corners = rng.uniform(0, 100, (2, 2)).round(int(rng.integers(0, 3)))
        sizes = rng.uniform(-5, 60, (2, 2)).round(int(rng.integers(0, 3)))
        cases.append(tuple(tuple(float(v) for v in (*corner, *(corner + size))) for corner, size in zip(corners, sizes)))
    for boxes in cases:
        assert _union_area(boxes) == _union_area_by_levels(boxes), boxes


def test_paired_iou_is_the_matrix_bit_for_bit():
    # Each object against its own image's regions, many images in one pass, gives exactly the bits of
    # iou_matrix image by image (the build batches a chunk's images and must write the same files).
    rng = np.random.default_rng(1)
    objects = rng.uniform(0, 300, (7, 4)).cumsum(axis=1)  # x1 <= y1 <= x2 <= y2: some degenerate, some not
    regions = rng.uniform(0, 300, (7, 36, 4)).astype(np.float32).cumsum(axis=2)
    batched = paired_iou(objects[:, None, :], regions)
    for row in range(7):
        np.testing.assert_array_equal(batched[row], iou_matrix(objects[row:row + 1], regions[row])[0])


def test_groundings_of_many_images_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(2)
    images = []
    for count in (3, 0, 1, 5):  # an image without objects too
        corners = rng.uniform(0, 200, (count, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(1, 80, (count, 2))], axis=1)
        scene = _scene(**{f"o{i}": ("thing", tuple(box)) for i, box in enumerate(boxes)})
        regions = np.concatenate([rng.uniform(0, 200, (36, 2)), rng.uniform(200, 300, (36, 2))], axis=1)
        images.append((scene, regions.astype(np.float32)))
    images[0][1][5] = [1000, 1000, 1001, 1001]  # far from everything
    together = ImageGrounding.for_images(images)
    for (scene, regions), batched in zip(images, together):
        alone = ImageGrounding(scene, regions)
        assert batched.best_region == alone.best_region and batched.best_iou == alone.best_iou
        assert batched.scene_objects is scene and batched.region_boxes is regions
    assert ImageGrounding.for_images([]) == []


def test_compact_record_writes_as_the_record():
    regions = np.zeros((36, 4), np.float32)
    regions[3] = [0, 0, 10, 10]
    image = ImageGrounding(_scene(a=("cup", (0.123, 0.456, 10.005, 12.0))), regions)
    grounded = ground("the (obj:a) is red", image)
    assert json.dumps(grounded.compact_record()) == json.dumps(grounded.record())
    assert grounded.record()["boxes"] == [[round(v, 2) for v in (0.123, 0.456, 10.005, 12.0)]]
    # the image keeps one rounded box per object: records of many questions share it
    assert ground("a (obj:a)", image).compact_record()["boxes"][0] is grounded.compact_record()["boxes"][0]


def test_tokenizer_caches_pieces_but_rejects_malformed_ones_every_time():
    text = "the (obj:7) is , on the left ."
    assert tokenize_raw(text) == tokenize_raw(text) == [
        (WORD, "the"), (OBJECT, ("7",)), (WORD, "is"), (WORD, ","), (WORD, "on"), (WORD, "the"), (WORD, "left")]
    for _ in range(2):
        with pytest.raises(GroundingError, match="no id"):
            tokenize_raw("the (obj: ) is red")
        with pytest.raises(GroundingError, match="nested"):
            tokenize_raw("the (obj:(7) is red")


def test_image_grounding_takes_region_boxes_as_lists_too():
    regions = [[0, 0, 10, 10]] + [[500, 500, 510, 510]] * 35
    image = ImageGrounding(_scene(a=("cup", (0, 0, 10, 12))), regions)
    assert image.best_region == {"a": 0} and image.best_iou["a"] == pytest.approx(100 / 120)
