# One virtual environment for everything; each target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch is the fast default here; set TORCH_SPEC="torch" (or a CUDA index) elsewhere.
TORCH_SPEC ?= torch==2.13.0
export MUJOCO_GL ?= egl

.PHONY: setup pretrain plan tensorboard test test-slow benchmark lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,pusht,minari]"
	# gym-pusht's opencv-python needs libGL.so.1 and GLib; where they are missing, use the headless build
	$(PY) -c "import cv2" 2>/dev/null || { $(PY) -m pip uninstall --quiet -y opencv-python && \
		$(PY) -m pip install --quiet "opencv-python-headless>=4.9,<5"; }
	touch $@

setup: $(VENV)/.installed

# Command-line overrides go in ARGS, e.g. make plan ARGS="env=reacher agent=mpc"
pretrain: setup
	$(PY) -m experiments.pretrain $(ARGS)

plan: setup
	$(PY) -m experiments.plan $(ARGS)

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir runs

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

benchmark: setup
	$(PY) -m experiments.benchmark

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
