# Two commands for people: `make lab` (students) and `make test` (everyone). Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install sandbox browser lab test grade formgrade solutions release check site bundle validate

install: $(STAMP)

# Re-installs only when the pins change, so a second `make` is instant.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Grading runs every submission inside bubblewrap; install it when missing (Debian/Ubuntu, as root or with sudo).
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "bubblewrap (bwrap) is needed to grade: ask an administrator to install the 'bubblewrap' package"; exit 1; fi; \
	  $$SUDO apt-get install -y -q bubblewrap >/dev/null || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q bubblewrap >/dev/null; }; }

# The site tests open pages in headless Chromium; without it (no root, no sudo) those tests are skipped.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else SUDO=false; fi; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null 2>&1 && \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; } || echo "chromium not installed: the site's browser tests will be skipped"; }

# The student's Lab: nbgrader's instructor panels off (lab-config/), and --allow-root where it is needed
# (containers and cloud notebook machines often run as root). LAB_ARGS passes more options, e.g. --no-browser.
lab: install
	JUPYTER_CONFIG_DIR="$(CURDIR)/lab-config" $(BIN)/jupyter lab --notebook-dir=notebooks \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Check a lesson notebook the way the grader will run it: make validate NOTEBOOK=notebooks/01_.../01_....ipynb
validate: install
	@test -n "$(NOTEBOOK)" || { echo "usage: make validate NOTEBOOK=notebooks/<lesson>/<lesson>.ipynb"; exit 2; }
	$(BIN)/python -m utils.validate "$(NOTEBOOK)"

test: install sandbox browser
	$(BIN)/python -m pytest

release: install
	$(BIN)/python -m grader release

check: install
	$(BIN)/python -m grader check

# What a class gets: student notebooks, utils and the visible expectations, without the answer key.
BUNDLE ?= bundle
bundle: install
	$(BIN)/python -m grader bundle "$(BUNDLE)"

solutions: install
	$(BIN)/python -m grader solutions

site: install
	$(BIN)/python -m grader solutions --html site

grade: install sandbox
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=path/to/submissions OUT=path/to/results"; exit 2; }
	$(BIN)/python -m grader autograde "$(SUBMISSIONS)" --out "$(OUT)"

# Grade the written answers of a graded batch in nbgrader's formgrader (Nbgrader > Formgrader in JupyterLab).
formgrade: install
	@test -d "$(OUT)/workspace" || { echo "usage: make formgrade OUT=path/to/results (after make grade)"; exit 2; }
	cd "$(OUT)/workspace" && $(abspath $(BIN))/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root)
