# Two commands for people: `make lab` (students) and `make test` (everyone). Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lab test grade solutions release check

install: $(STAMP)

# Re-installs only when the pins change, so a second `make` is instant.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

test: install
	$(BIN)/python -m pytest

release: install
	$(BIN)/python -m grader release

check: install
	$(BIN)/python -m grader check

solutions: install
	$(BIN)/python -m grader solutions

grade: install
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=path/to/submissions OUT=path/to/results"; exit 2; }
	$(BIN)/python -m grader autograde "$(SUBMISSIONS)" --out "$(OUT)"
