"""Benchmark `python -m rexlib build` on the embedded world.

    python benchmarks/bench_build.py                       # default world (2,000 images) + a 100k-question one
    python benchmarks/bench_build.py --sizes 2000 --repeat 1

For each world (built with ``--no-images`` into a temporary folder when absent) and its train split:

* json-load:      seconds to ``json.load`` the question and scene-graph files (the floor any build pays);
* execute:        questions/s for parse + execute + post-process (``rexlib.program.execute``);
* grounding:      questions/s for grounding + conversion of the explanations;
* end to end:     the whole ``build`` (all splits, all files written) with 1 and 2 workers: wall
                  seconds, CPU seconds, questions per CPU-second, ratio to the json-load time, and the
                  peak resident memory of the largest process.

Targets: >= 8,000 questions/s per core end to end (questions per CPU-second of the whole build, all
its processes), <= 3x the json-load time, < 4 GB peak memory on the 100,000-question world. Timings on
a shared machine are noisy: CPU seconds are the steadier figure, and the last lines print, for each
world, questions/s per core and the ratio to the json-load time measured in the same run, then the load
average (record it with every figure). Under heavy load even CPU seconds inflate (about threefold at
load 6-7 on 2 cores); compare code versions by building both at the same time, or by instruction counts
(``valgrind --tool=callgrind``), which load does not change. The README records the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORLD = ROOT / "outputs" / "datasets" / "world"
QUESTIONS_PER_IMAGE = 12.5  # the world's train split holds ~10 questions per image, ~12.5 over all splits


def ensure_world(images: int, scratch: Path) -> Path:
    if images == 2000 and (DEFAULT_WORLD / "world.json").exists():
        return DEFAULT_WORLD
    folder = scratch / f"world-{images}"
    if not (folder / "world.json").exists():
        print(f"building a {images}-image world in {folder} (no images) ...", flush=True)
        subprocess.run([sys.executable, "-m", "rexlib", "build-world", "--out", str(folder), "--images",
                        str(images), "--seed", "0", "--no-images", "--quiet"], check=True, cwd=ROOT)
    return folder


def time_json_load(world: Path) -> float:
    started = time.perf_counter()
    for split in ("train", "val", "testdev"):
        for path in (world / "questions" / f"{split}_balanced_questions.json",
                     world / "sceneGraphs" / f"{split}_sceneGraphs.json"):
            with open(path, encoding="utf-8") as handle:
                json.load(handle)
    return time.perf_counter() - started


def time_stages(world: Path) -> dict:
    """Per-stage throughput on the train split, in this process (one core)."""
    from rexlib import gqa
    from rexlib.dataset.grounding import ImageGrounding, ground
    from rexlib.dataset.store import read_region_boxes
    from rexlib.program import ExecutionError, execute
    from rexlib.program.attributes import CategoryTable

    questions_file, scenes_file = gqa.split_files(world, "train")
    with open(questions_file, encoding="utf-8") as handle:
        raw_questions = json.load(handle)
    with open(scenes_file, encoding="utf-8") as handle:
        raw_scenes = json.load(handle)
    regions = read_region_boxes(world / "regions.h5")
    scenes = {image_id: gqa.parse_scene_graph(image_id, raw) for image_id, raw in raw_scenes.items()}
    categories = CategoryTable.mine(raw_questions.values())  # as the build mines them (here: train only)

    started = time.process_time()
    executions = []
    for question_id, raw in raw_questions.items():
        scene = scenes[raw["imageId"]]
        try:
            question = gqa.parse_question(question_id, raw, scene_graphs={scene.image_id: scene})
            executions.append((scene, execute(question, scene, categories)))
        except (gqa.GQAError, ExecutionError):
            pass
    execute_seconds = time.process_time() - started

    started = time.process_time()
    images = {}
    for scene, execution in executions:
        image = images.get(scene.image_id)
        if image is None:
            image = images[scene.image_id] = ImageGrounding(scene.objects, regions.boxes[regions.row[scene.image_id]])
        ground(execution.explanation, image, image_id=scene.image_id)
    grounding_seconds = time.process_time() - started
    return {
        "train_questions": len(raw_questions),
        "execute_questions_per_s": round(len(raw_questions) / execute_seconds),
        "grounding_questions_per_s": round(len(executions) / grounding_seconds),
    }


def time_build(world: Path, out: Path, workers: int) -> dict:
    """One whole build in a child process: wall and CPU seconds, peak memory of the largest process."""
    command = [sys.executable, "-c", (
        "import resource, sys, time, json\n"
        "from rexlib.dataset.build import build\n"
        f"started = time.perf_counter()\n"
        f"reports = build({str(world)!r}, {str(world / 'regions.h5')!r}, {str(out)!r}, workers={workers},"
        " log=lambda *a: None)\n"
        "wall = time.perf_counter() - started\n"
        "own = resource.getrusage(resource.RUSAGE_SELF)\n"
        "children = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall': wall, 'cpu': own.ru_utime + own.ru_stime + children.ru_utime"
        " + children.ru_stime, 'peak_kb': max(own.ru_maxrss, children.ru_maxrss),"
        " 'questions': sum(r['questions'] for r in reports.values())}))\n"
    )]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bytecode_note() -> str:
    """Whether the builds found rexlib's bytecode cached. Without it (``PYTHONDONTWRITEBYTECODE`` set and
    no ``__pycache__`` beside the sources) every build compiles rexlib's sources first: about 0.23 G
    instructions (valgrind), 7% of a 300-image build, a fixed cost each figure then holds."""
    import importlib.util

    cached = Path(importlib.util.cache_from_source(str(ROOT / "rexlib" / "dataset" / "build.py"))).exists()
    if cached or not sys.dont_write_bytecode:
        return "bytecode: cached (or written by the first build)"
    return "bytecode: not cached (PYTHONDONTWRITEBYTECODE, no __pycache__): each build compiles rexlib's sources"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000],
                        help="world sizes in images (8,000 images hold ~100,000 questions)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scratch", default=None, help="folder for worlds and builds (default: a temp dir)")
    parser.add_argument("--out", default=None, help="write the figures as json here")
    args = parser.parse_args(argv)

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="rex-bench-"))
    figures = []
    for images in args.sizes:
        world = ensure_world(images, scratch)
        json_load = time_json_load(world)
        entry = {"images": images, "world": str(world), "json_load_s": round(json_load, 3), **time_stages(world)}
        for workers in args.workers:
            out = scratch / f"build-{images}-{workers}"
            shutil.rmtree(out, ignore_errors=True)  # a leftover build would be resumed, not rebuilt
            timing = time_build(world, out, workers)
            entry[f"workers_{workers}"] = {
                "questions": timing["questions"],
                "wall_s": round(timing["wall"], 2),
                "cpu_s": round(timing["cpu"], 2),
                "questions_per_cpu_s": round(timing["questions"] / timing["cpu"]),
                "questions_per_wall_s": round(timing["questions"] / timing["wall"]),
                "ratio_to_json_load": round(timing["wall"] / json_load, 2),
                "peak_memory_mb": round(timing["peak_kb"] / 1024),
            }
        figures.append(entry)
        print(json.dumps(entry, indent=1), flush=True)
    for entry in figures:
        for workers in args.workers:
            timing = entry[f"workers_{workers}"]
            print(f"{entry['images']} images, {workers} worker(s): {timing['questions_per_cpu_s']:,} questions/s per "
                  f"core end to end, {timing['ratio_to_json_load']}x the json-load time of the same run")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (timings under load are inflated); "
          f"{bytecode_note()}")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
