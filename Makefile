# partnerpay: `make run` starts it with demo data; `make test` runs every check.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench browser venv clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

.env:
	$(PYTHON) -c "import secrets; print('PARTNERPAY_SECRET_KEY=' + secrets.token_urlsafe(48))" > .env
	@echo "wrote .env with a new secret key"

run: venv .env
	$(BIN)/partnerpay migrate
	$(BIN)/partnerpay demo
	$(BIN)/partnerpay serve --host 127.0.0.1 --port 8000

# Debian's chromium for the browser tests (Playwright never downloads a browser here) and poppler-utils,
# whose pdftotext reads statement PDFs back in the tests.
browser:
	@{ command -v chromium >/dev/null && command -v pdftotext >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium poppler-utils >/dev/null; \
	  else echo "install Debian's chromium and poppler-utils: sudo apt-get install chromium poppler-utils"; exit 1; fi; }

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

pytest: venv browser
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

BENCHES := ledger_post_batch partner_import click_redirect ingest_http commission_eval period_close reports

bench: venv
	@for b in $(BENCHES); do $(BIN)/python bench/$$b.py --size ci --db sqlite || exit 1; \
	  if [ -n "$$PARTNERPAY_BENCH_DATABASE_URL" ]; then $(BIN)/python bench/$$b.py --size ci --db postgresql || exit 1; fi; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
