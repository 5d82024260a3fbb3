# One-step set-up from a fresh clone: `make run` (the demo end to end) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all
# The workflow config: the embedded default; `make run CONFIG=my.yaml` runs yours instead (it replaces the default).
CONFIG ?= config/config.yaml
# Where results/, logs/ and .snakemake/ go (relative paths in the config are relative to it too).
DIR ?= .
SNAKEMAKE = $(BIN)/snakemake --directory $(DIR) --configfile $(abspath $(CONFIG))

.PHONY: setup run unlock test test-cluster report report-zip readme-figures lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

run: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --workflow-profile workflow/profiles/default
	$(SNAKEMAKE) --report results/report.html

# After a hard kill (kill -9, the OOM killer, a node reboot) Snakemake's lock stays in DIR/.snakemake:
# `make unlock` with the run's CONFIG and DIR removes it; `make run` with the same then resumes.
unlock: $(STAMP)
	$(SNAKEMAKE) --unlock

report: $(STAMP)
	$(SNAKEMAKE) --report results/report.html

# The same report as a zip (report.html plus the result files beside it, not base64-embedded):
# for runs with many or large figures.
report-zip: $(STAMP)
	$(SNAKEMAKE) --report results/report.zip

# The README's pictures, taken from the default run's results (run `make run` first), so they never
# drift from the code: the front page's forest plot and the demo's Grad-CAM / GraFIQs maps panel.
README_MAPS := results/report/demo/sface/gradcam/grafiqs/maps.png
readme-figures:
	test -f results/report/forest.png -a -f $(README_MAPS) || { echo "run 'make run' first"; exit 1; }
	mkdir -p docs/images
	cp results/report/forest.png docs/images/forest.png
	cp $(README_MAPS) docs/images/maps-demo-gradcam-grafiqs.png

test: $(STAMP)
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/ruff format --check src scripts tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/python -m amva.datasets.demo fetch resources/demo
	$(BIN)/pytest

# The workflow on a real one-node SLURM cluster through the executor plugin (minutes; as root:
# tests/cluster/start-slurm.sh installs and starts the daemons). Not part of `make test`.
test-cluster: $(STAMP)
	$(BIN)/python -m amva.datasets.demo fetch resources/demo
	$(BIN)/pytest tests/cluster -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs benchmarks .snakemake
