# One-step set-up from a fresh clone: `make run` (the demo end to end) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all

.PHONY: setup run test test-cluster report report-zip lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default
	$(BIN)/snakemake --report results/report.html

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

# The same report as a zip (report.html plus the result files beside it, not base64-embedded):
# for runs with many or large figures.
report-zip: $(STAMP)
	$(BIN)/snakemake --report results/report.zip

test: $(STAMP)
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/ruff format --check src scripts tests bench
	$(BIN)/python -m amva.datasets.demo fetch resources/demo
	$(BIN)/pytest

# The workflow on a real one-node SLURM cluster through the executor plugin (minutes; as root:
# tests/cluster/start-slurm.sh installs and starts the daemons). Not part of `make test`.
test-cluster: $(STAMP)
	$(BIN)/python -m amva.datasets.demo fetch resources/demo
	$(BIN)/pytest tests/cluster -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
