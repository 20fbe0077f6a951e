# Two commands set everything up on a fresh clone: `make test` and `make demo`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
DEMO_OUT ?= $(CURDIR)/out/demo

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "ssg-dmi needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check ssg_dmi tests
	$(VENV)/bin/ruff format --check ssg_dmi tests
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

demo: install
	@rm -rf "$(DEMO_OUT)"
	@echo "== Before: what the example images carry (private fields, no opt-out)"
	@$(VENV)/bin/ssg-dmi inspect example-site/images || true
	@echo
	@echo "== Tagging"
	$(VENV)/bin/ssg-dmi tag example-site/images --out "$(DEMO_OUT)" \
	  --config example-site/ssg-dmi.toml
	@echo
	@echo "== After: read back from the tagged copies"
	$(VENV)/bin/ssg-dmi inspect "$(DEMO_OUT)"
	@echo
	@echo "Tagged copies of example-site/images are in $(DEMO_OUT)"
	@echo "Read them back yourself: exiftool -G1 -XMP-plus:all -XMP-dc:all $(DEMO_OUT)"

# ssg-dmi build against @11ty/eleventy-img on ~55 real images: see bench/README.md.
bench: install
	bash ../shared/corpus/wallpapers.sh .cache/bench-corpus
	$(PY) bench/build.py --corpus .cache/bench-corpus

clean:
	rm -rf $(VENV) out .cache .mypy_cache .pytest_cache .ruff_cache *.egg-info
