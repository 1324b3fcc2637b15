# Everything a fresh machine needs beyond Python itself is installed here, into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser nftables test run bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The web console's browser tests drive Debian's headless chromium. Install it when
# this user can (root with apt-get); otherwise those tests skip and say why.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null) || echo "chromium could not be installed; browser tests will skip"; \
	  else echo "chromium is not installed; browser tests will skip"; fi; \
	fi

# mesh run --hosts enforces network policy ([[block]], partition, loss) with Debian's
# nftables. Install it when this user can (root with apt-get); otherwise those runs
# say so in one line and their tests skip, saying why.
nftables:
	@if ! command -v nft >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's nftables for the hosts tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      nftables >/dev/null) || echo "nftables could not be installed; network policy tests will skip"; \
	  else echo "nft is not installed; network policy tests will skip"; fi; \
	fi

# The package is type-checked (strict; pyproject.toml's [tool.mypy]) before the tests run.
test: $(STAMP) browser nftables
	$(PY) -m mypy mesh
	$(PY) -m pytest -q

run: $(STAMP)
	$(VENV)/bin/mesh run scenarios/showcase.toml

bench: $(STAMP)
	$(PY) -m mesh.bench

clean:
	rm -rf $(VENV) build *.egg-info
