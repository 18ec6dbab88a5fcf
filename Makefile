# Two commands: `make demo` (set up, then run the numbered notebooks on the embedded world)
# and `make test` (set up, then run the tests). Both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rex-installed
SIZE ?= demo
PYTEST_ARGS ?=

.PHONY: setup demo test lab lint world pretrain benchmark clean

setup: $(STAMP)

# torch goes in first, pinned: it resolves to the CPU build on disk; a bare `torch` pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[notebooks,test]'
	$(PY) -m ipykernel install --user --name rex --display-name "Python (rex)" >/dev/null
	touch $(STAMP)

demo: setup
	$(PY) -m rexlib run-notebooks --size $(SIZE)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

lint: setup
	$(VENV)/bin/ruff check rexlib tests data_prep

world: setup
	$(PY) -m rexlib build-world --out outputs/datasets/world --images 2000 --seed 0

# The shipped backbone (weights/visualbert-world-tiny): pretrained on the training images of the default world
# grown to four times its training images (its val and testdev kept out), and checked to serve the default
# world's regions.h5; one core, about 55 minutes. Its recipe and checksums are in the folder's pretraining.json.
GROWN := outputs/datasets/world-grown
pretrain: world
	$(PY) -m rexlib build-world --out outputs/datasets/world-8000 --images 8000 --seed 0 --no-images
	$(PY) -m rexlib grow-world --base outputs/datasets/world --larger outputs/datasets/world-8000 --out $(GROWN)
	$(PY) -m rexlib build --gqa $(GROWN) --out outputs/datasets/gqa-rex-grown --workers 1
	$(PY) -m rexlib pretrain --gqa $(GROWN) --store outputs/datasets/gqa-rex-grown \
		--serves outputs/datasets/world/regions.h5 --out weights/visualbert-world-tiny --steps 9000 --lr 2e-3 --eval-every 500

benchmark: setup
	$(PY) benchmarks/bench_world.py

clean:
	rm -rf outputs/datasets outputs/runs outputs/notebooks outputs/figures outputs/REPORT.md
