# `make demo` and `make test` each set themselves up on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_RUN ?= runs/demo/best-hash-48
DEMO_CONFIG ?= configs/best-hash-48.yaml

.PHONY: setup test lint demo data browser bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: lint browser
	$(VENV)/bin/pytest -q -m "not slow"

data:
	@if ls $(FMNIST_DIR)/train-images-idx3-ubyte.gz >/dev/null 2>&1 || [ -n "$$DEEPHASH_DATA" ]; then \
		echo "Fashion-MNIST found."; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		apt-get install -y dataset-fashion-mnist >/dev/null || (apt-get update >/dev/null && apt-get install -y dataset-fashion-mnist >/dev/null); \
	else \
		echo "Fashion-MNIST is missing. Run 'sudo apt-get install -y dataset-fashion-mnist'," ; \
		echo "or set DEEPHASH_DATA to a folder holding fashion-mnist/*-ubyte.gz, or use 'deephash ... --download'."; \
		exit 1; \
	fi

# Headless Chromium for the web page's browser test (Debian's packages; skipped with a reason
# when missing and not root).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "Chromium found."; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		apt-get install -y chromium chromium-driver >/dev/null || (apt-get update >/dev/null && apt-get install -y chromium chromium-driver >/dev/null); \
	else \
		echo "Chromium is missing: the browser test will be skipped (sudo apt-get install -y chromium chromium-driver)."; \
	fi

# The main job: train the best 48-bit hashing recipe on Fashion-MNIST (about 15 minutes of training
# on 2 CPU cores), evaluate it (query = test 10,000, database = train 60,000) and print the table.
# Re-running reuses a finished run and resumes an interrupted one.
demo: setup data
	@if [ -f $(DEMO_RUN)/metrics.json ]; then echo "reusing $(DEMO_RUN)"; \
	elif [ -f $(DEMO_RUN)/last.pt ]; then $(VENV)/bin/deephash train --resume $(DEMO_RUN); \
	else $(VENV)/bin/deephash train --config $(DEMO_CONFIG) --out $(DEMO_RUN); fi
	$(VENV)/bin/deephash report $(DEMO_RUN)
	@echo "run folder: $(DEMO_RUN) (metrics.json, last.pt, history.png, tsne.png, tsne_codes.png, pr_curve.png)"
	@echo "search it in a browser (the 60,000 training images; see docs/SERVING.md):"
	@echo "  $(VENV)/bin/deephash collection create runs/demo/collection --run $(DEMO_RUN)"
	@echo "  $(VENV)/bin/deephash collection add runs/demo/collection --dataset fashion-mnist"
	@echo "  $(VENV)/bin/deephash serve runs/demo/collection      # then open http://127.0.0.1:8000/"

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
