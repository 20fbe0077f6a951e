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
	$(PY) -m pip install --quiet -e '.[test,mkdocs]'
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
	@echo "== 1. The example images as a camera leaves them (private fields, no opt-out)"
	@$(VENV)/bin/ssg-dmi inspect example-site/images || true
	@echo
	@echo "== 2. MkDocs + Material site (example-site/mkdocs), plugin 'ssg-dmi'"
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build -f example-site/mkdocs/mkdocs.yml -d "$(DEMO_OUT)/mkdocs"
	@echo
	@echo "== 3. Pelican site (example-site/pelican), plugin 'ssg_dmi.pelican'"
	cd example-site/pelican && ../../$(VENV)/bin/pelican content -s pelicanconf.py -o "$(DEMO_OUT)/pelican"
	@echo
	@echo "== 4. ssg-dmi check: everything read back from the built sites"
	$(VENV)/bin/ssg-dmi check "$(DEMO_OUT)/mkdocs" --config example-site/ssg-dmi.toml
	$(VENV)/bin/ssg-dmi check "$(DEMO_OUT)/pelican" --config example-site/ssg-dmi.toml
	@echo
	@echo "== 5. Any other generator's output: ssg-dmi tag / build"
	$(VENV)/bin/ssg-dmi tag example-site/images/cups.jpg --out "$(DEMO_OUT)/tagged" --config example-site/ssg-dmi.toml
	$(VENV)/bin/ssg-dmi inspect "$(DEMO_OUT)/tagged/cups.jpg"
	@echo
	@echo "Built sites:   $(DEMO_OUT)/mkdocs  and  $(DEMO_OUT)/pelican"
	@echo "Serve one:     python3 -m http.server -d $(DEMO_OUT)/mkdocs 8000"
	@echo "Read tags:     exiftool -G1 -XMP-plus:all -XMP-dc:all $(DEMO_OUT)/mkdocs/images"

# Opt-in C2PA (README "C2PA (Content Credentials)"): the demo's MkDocs site signed with an
# UNTRUSTED test chain, read back by `check` and `inspect`.
C2PA_TEST = $(DEMO_OUT)/c2pa-test
.PHONY: demo-c2pa
demo-c2pa: demo
	@echo "== 6. C2PA, opt-in: the MkDocs site signed with an UNTRUSTED test chain"
	$(VENV)/bin/ssg-dmi c2pa test-cert "$(C2PA_TEST)"
	@{ cat example-site/ssg-dmi.toml; printf '\n[c2pa]\ncert = "%s"\nkey = "%s"\n' \
	  "$(C2PA_TEST)/untrusted-test-chain.pem" "$(C2PA_TEST)/untrusted-test-key.pem"; } \
	  > "$(C2PA_TEST)/ssg-dmi.toml"
	cp -r "$(DEMO_OUT)/mkdocs" "$(DEMO_OUT)/mkdocs-signed"
	$(VENV)/bin/ssg-dmi build "$(DEMO_OUT)/mkdocs-signed" --config "$(C2PA_TEST)/ssg-dmi.toml" --no-cache
	$(VENV)/bin/ssg-dmi check "$(DEMO_OUT)/mkdocs-signed" --config "$(C2PA_TEST)/ssg-dmi.toml"
	$(VENV)/bin/ssg-dmi inspect "$(DEMO_OUT)/mkdocs-signed/images/cups.jpg"

# ssg-dmi build against @11ty/eleventy-img on ~55 real images: see bench/README.md.
bench: install
	bash ../shared/corpus/wallpapers.sh .cache/bench-corpus
	$(PY) bench/build.py --corpus .cache/bench-corpus

# Thousands of mutated images through `ssg-dmi build` (tests/fuzz.py; `make test` runs 400).
FUZZ_COUNT ?= 5000
FUZZ_SEED ?= 1
.PHONY: fuzz
fuzz: install
	$(PY) -m tests.fuzz --count $(FUZZ_COUNT) --seed $(FUZZ_SEED)

clean:
	rm -rf $(VENV) out .cache .mypy_cache .pytest_cache .ruff_cache *.egg-info
