# Two commands do everything:  `make lab` (set up, open the course)  and  `make test` (set up, run all tests).
# Both create .venv on first use and only reinstall when a requirements file changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmlab-installed
REQS   := requirements.txt requirements-assets.txt requirements-dev.txt constraints.txt pyproject.toml

.PHONY: lab test setup notebooks check-notebooks clean

setup: $(STAMP)

$(STAMP): $(REQS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-assets.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest

notebooks: $(STAMP)
	$(BIN)/python -m llmlab.course build

check-notebooks: $(STAMP)
	$(BIN)/python -m llmlab.course build --check

clean:
	rm -rf $(VENV)
