# Two commands are the whole set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo
CREATORS ?= 5000
DAYS ?= 540

.PHONY: demo explore lint test test-fast bench clean java-note

# --engine spark runs on the JVM: say so once when there is none (its tests then skip).
java-note:
	@command -v java >/dev/null 2>&1 || echo "note: Java 17 is needed for --engine spark and its tests (no java on PATH; on Debian: apt-get install openjdk-17-jre-headless)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)
	@$(MAKE) --no-print-directory java-note

# Simulate a marketplace, validate it, train and register a model (MLflow's default
# store: ./mlflow.db), build the snapshot store (the last day and every 30 days six
# months back) and score the example briefs into a partner list from it.
demo: $(STAMP)
	$(BIN)/python -m marketplace simulate --out $(DEMO)/data --creators $(CREATORS) --days $(DAYS) --seed 7 --overwrite
	$(BIN)/python -m marketplace validate $(DEMO)/data
	$(BIN)/python -m training $(DEMO)/data --truth $(DEMO)/data/truth --register creator-scores --metrics-out $(DEMO)/metrics.json
	$(BIN)/python -m store build $(DEMO)/data --out $(DEMO)/store --every 30d --back 180d --keep 7
	$(BIN)/python -m store score $(DEMO)/store --model models:/creator-scores@champion
	$(BIN)/python -m serving --model models:/creator-scores@champion --store $(DEMO)/store --briefs examples/briefs.csv --out $(DEMO)/partners.csv --show 5

# The explorer (web pages and JSON API) on the demo's model and store: http://127.0.0.1:8000
explore: $(STAMP)
	$(BIN)/python -m explorer --model models:/creator-scores@champion --store $(DEMO)/store

# Lint, format check and type check (configured in pyproject.toml); part of `make test`.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) java-note lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) java-note
	$(BIN)/python -m pytest -q -m 'not slow'

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --markdown docs/benchmarks.md

clean:
	rm -rf $(VENV) $(DEMO) mlruns mlartifacts mlflow.db
