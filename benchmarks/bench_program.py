"""Benchmark: questions/s for parse + execute + realise over a world, against plain json loading.

    .venv/bin/python benchmarks/bench_program.py [--world DIR] [--images 2000] [--split train] [--profile]

Builds the world (``--no-images``) into a temporary directory when ``--world`` is not given or absent.
Reports the time to ``json.load`` the question and scene-graph files, to parse them into records,
and to execute every program (handlers + realisation + post-processing), with the ratio of
parse + execute to the json load. Target: >= 10,000 questions/s per core for execute.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path

from rexlib.gqa import parse_question, parse_scene_graph, split_files
from rexlib.program import ExecutionError, execute
from rexlib.program.attributes import CategoryTable


def ensure_world(world: Path | None, images: int) -> Path:
    if world is not None and (world / "world.json").exists():
        return world
    from rexlib.world.build import build_world

    out = world or Path(tempfile.mkdtemp(prefix="bench_program_world_"))
    build_world(out, images=images, seed=0, render=False, progress=False, log=lambda _message: None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None, help="a world directory (built there if absent)")
    parser.add_argument("--images", type=int, default=2000, help="images in a world built for the benchmark")
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each phase")
    parser.add_argument("--profile", action="store_true", help="print the cProfile of one execute pass")
    args = parser.parse_args(argv)

    world = ensure_world(args.world, args.images)
    question_file, scene_file = split_files(world, args.split)

    def load_json():
        with open(question_file, encoding="utf-8") as handle:
            questions = json.load(handle)
        with open(scene_file, encoding="utf-8") as handle:
            scenes = json.load(handle)
        return questions, scenes

    def best(function):
        times, result = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = function()
            times.append(time.perf_counter() - start)
        return min(times), result

    json_time, (raw_questions, raw_scenes) = best(load_json)

    def parse():
        scenes = {image_id: parse_scene_graph(image_id, raw) for image_id, raw in raw_scenes.items()}
        questions = [parse_question(question_id, raw, scene_graphs=scenes) for question_id, raw in raw_questions.items()]
        return scenes, questions

    parse_time, (scenes, questions) = best(parse)
    pairs = [(question, scenes[question.image_id]) for question in questions]
    mine_time, categories = best(lambda: CategoryTable.mine(raw_questions.values()))  # as the builder does

    def execute_all():
        failures = 0
        for question, scene in pairs:
            try:
                execute(question, scene, categories)
            except ExecutionError:
                failures += 1
        return failures

    execute_time, failures = best(execute_all)
    count = len(pairs)
    print(f"world {world}  split {args.split}: {count} questions, {len(scenes)} scene graphs, {failures} failures")
    print(f"json load              {json_time * 1e3:8.1f} ms")
    print(f"parse records          {parse_time * 1e3:8.1f} ms  {count / parse_time:10.0f} questions/s")
    print(f"mine categories        {mine_time * 1e3:8.1f} ms  {count / mine_time:10.0f} questions/s")
    print(f"execute + realise      {execute_time * 1e3:8.1f} ms  {count / execute_time:10.0f} questions/s")
    print(f"parse + execute        {(parse_time + execute_time) / json_time:8.2f} x the json load time")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(execute_all)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
