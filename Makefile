# The two commands the README promises: `make demo` and `make test`.
# Both create or refresh .venv, so on a fresh machine they are the whole set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOAK_MINUTES ?= 10

.PHONY: demo test lint venv bench clean

$(STAMP): pyproject.toml plugins/mlflow-run-events/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,spark,docs]'
	# the MLflow server plugin (run events) with its basic-auth extra, for the tests that start `mlflow server --app-name registry-watcher[-basic-auth]`
	$(BIN)/python -m pip install -q --disable-pip-version-check -e 'plugins/mlflow-run-events[auth]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

test: $(STAMP)
	@# the console's browser tests drive Debian's chromium (Playwright's own download is not reachable here)
	@command -v chromium >/dev/null || (apt-get install -y -qq chromium >/dev/null 2>&1 || true)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site
	# two workers (pytest-xdist): the suite waits on servers and daemons as much as it computes; tests/conftest.py
	# keeps the lock database's tests and each module with a server of its own in one worker (--dist loadgroup)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The house's checks: layers (import-linter), strict typing (mypy), lint (ruff).
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/ruff check watcher handlers tests bench demo plugins

bench: $(STAMP)
	$(BIN)/python bench/bench_latency.py
	$(BIN)/python bench/bench_burst.py
	$(BIN)/python bench/bench_idle_poll.py
	$(BIN)/python bench/bench_soak.py --minutes $(SOAK_MINUTES)
	$(BIN)/python bench/bench_scoring.py
	$(BIN)/python bench/bench_spark.py --rows 1000000
	$(BIN)/python bench/bench_cli.py

clean:
	rm -rf $(VENV) demo/workdir .pytest_cache site
