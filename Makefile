# `make book` and `make test` do all set-up on a fresh machine: the venv, requirements.txt (which installs
# this package), then the book or the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test check-book browser lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(PY) -m repro build

test: $(STAMP)
	$(PY) -m pytest

# Debian's Chromium and its driver for the browser check (root, or a machine where they are installed already).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# Open every page of the rendered book (after `make book`) in headless Chromium; screenshots in _build/screenshots.
check-book: $(STAMP) browser
	$(PY) -m pytest tests/check_book.py -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests book/chapters

clean:
	rm -rf _build book/executed runs
