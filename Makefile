# The two set-up commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOME_DIR ?= sprava-data

.PHONY: demo test bench lint venv test-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e '.[media,pdf]'

test-venv: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

demo: venv
	rm -rf demo-media
	$(BIN)/python demo/make_media.py demo-media
	$(BIN)/sprava --home $(HOME_DIR) init
	$(BIN)/sprava --home $(HOME_DIR) ingest demo-media --source "demo volunteer" --wait
	$(BIN)/sprava --home $(HOME_DIR) items
	$(BIN)/sprava --home $(HOME_DIR) jobs
	$(BIN)/sprava --home $(HOME_DIR) similar "demo-media/2020-08-10 Pushkinskaya/IMG_0412.png"
	$(BIN)/sprava --home $(HOME_DIR) redact "demo-media/2020-08-10 Pushkinskaya/IMG_0413.png" \
		--out demo-media/IMG_0413-redacted.png
	$(BIN)/sprava --home $(HOME_DIR) verify
	$(BIN)/python demo/make_case.py demo-media $(HOME_DIR) > demo-media/case-id
	$(BIN)/sprava --home $(HOME_DIR) export case "$$(cat demo-media/case-id)" \
		--to "Office of the Prosecutor" --out demo-media/case.zip
	$(BIN)/sprava verify demo-media/case.zip --key "$$($(BIN)/sprava --home $(HOME_DIR) ledger key)"
	$(BIN)/sprava --home $(HOME_DIR) ledger checkpoint
	@echo "Instance in $(HOME_DIR): try '$(BIN)/sprava --home $(HOME_DIR) show <sha256 prefix>'"
	$(BIN)/python demo/login.py $(HOME_DIR)
	$(BIN)/sprava --home $(HOME_DIR) serve

# The whole suite on the embedded stack (SQLite and PostgreSQL, blobs in a folder, jobs in
# process), then the backend-contract suite (tests/conftest.py: CONTRACT) on the scaled
# stack: PostgreSQL, SeaweedFS, and real Celery workers fed through Redis, all started by
# the suite on loopback in temporary folders and stopped afterwards.
SCALED := SPRAVA_TEST_BACKENDS=postgresql SPRAVA_TEST_BLOBS=s3 SPRAVA_TEST_JOBS=celery

test: test-venv
	scripts/install-test-deps.sh
	$(BIN)/ruff check src tests bench demo
	$(BIN)/mypy
	$(BIN)/python -m pytest
	$(SCALED) $(BIN)/python -m pytest -m contract

bench: venv
	$(BIN)/pip install -q -e '.[bench]'
	scripts/install-bench-deps.sh
	$(BIN)/python -m bench

lint: test-venv
	$(BIN)/ruff check src tests bench demo
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-media build dist .pytest_cache .mypy_cache .ruff_cache
