# One command each: `make run` (set up, then serve the app) and `make test` (set up, then every test).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ./data
PYTHON ?= python3

.PHONY: setup run test screenshots checkpoints explore bench chromium clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# Browser tests use Debian's Chromium (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root" >&2; exit 1; }

run: setup
	$(PY) app.py

test: setup chromium
	$(PY) -m pytest tests

# The README's pictures (docs/images/): the browser tests' screenshots of every tab and of the Playground training.
screenshots: setup chromium
	LATENT_EXPLORER_SCREENSHOTS=docs/images $(PY) -m pytest tests/test_browser.py -k "above_the_fold or playground or dsprites" -q

# Regenerates every shipped checkpoint, metrics.json and atlas from scratch (see README for time).
checkpoints: setup
	training/checkpoints.sh $(DATA) $(PY)

# Your own images: `make explore DATA=PATH` trains the AE/VAE pairs on them, writes the atlas and the figures into
# checkpoints/<name>/; the next `make run` shows them. PATH: an image folder, an .npz file or an IDX prefix.
explore: setup
	@[ "$(origin DATA)" = "command line" ] || { echo "usage: make explore DATA=PATH [ARGS='--name NAME --no-2d ...']" >&2; exit 2; }
	$(PY) -m training.explore "$(DATA)" $(ARGS)

bench: setup
	$(PY) bench/train_throughput.py
	$(PY) bench/app_latency.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
