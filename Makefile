# opsconsole — two commands: `make run` and `make test`.
# Both install what is missing first (Debian packages, the virtualenv, vcsim).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv redis-server golang-go golang-github-vmware-govmomi-dev qemu-utils libpq-dev postgresql chromium nats-server ruby bubblewrap
HTMX_VERSION ?= 2.0.11
SWAGGER_UI_VERSION ?= 5.35.0
# pip-tools writes the lock files (make lock); it is not needed to install them.
PIP_TOOLS_VERSION := 7.6.2
LOCK_ARGS ?=
# pytest-xdist processes for make test (0: one process). The suite mostly waits on
# vcsim, agents and browsers, so 3 on 2 cores is faster than 2; files stay whole.
PYTEST_WORKERS ?= 3
export OPSCONSOLE_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run stop test install install-test apt venv lock vcsim htmx swagger-ui lint benchmark clean distclean

run: install vcsim
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py runstack

# Stops the stack and anything it left behind, even if runstack itself was killed.
stop:
	@if [ -x $(PY) ]; then $(PY) manage.py stopstack; else echo "opsconsole is not installed here"; fi

test: install-test vcsim
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

install: apt venv
install-test: apt $(VENV)/.installed-test

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed-app

# Exactly what the lock file names, each file checked against its hash; then the
# project itself (editable, no dependencies: the lock has them all).
$(VENV)/.installed-%: requirements/%.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $<
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Refresh the lock files from pyproject.toml's ranges (keeps current pins where they
# still fit; `make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed).
lock:
	test -x .build/pip-tools/bin/pip-compile || { $(PYTHON) -m venv .build/pip-tools && \
	  .build/pip-tools/bin/pip install -q pip-tools==$(PIP_TOOLS_VERSION); }
	for lock in app test; do \
	  extra=""; [ $$lock = test ] && extra="--extra test"; \
	  .build/pip-tools/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	    --no-emit-find-links --no-emit-index-url --no-emit-trusted-host $$extra $(LOCK_ARGS) \
	    -o requirements/$$lock.txt pyproject.toml requirements/build.in || exit 1; \
	done

vcsim:
	bash tools/vcsim/build.sh

# Refresh the vendored htmx from the npm package (keeps its LICENSE).
htmx:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz && \
	cp package/dist/htmx.min.js package/LICENSE $(CURDIR)/static/vendor/htmx/ && \
	echo "htmx.org $(HTMX_VERSION) (npm pack htmx.org@$(HTMX_VERSION); refresh with: make htmx HTMX_VERSION=x.y.z)" > $(CURDIR)/static/vendor/htmx/VERSION && rm -rf $$tmp

# Refresh the vendored Swagger UI of /api/v0/docs/ from the npm package (keeps its LICENSE and NOTICE).
swagger-ui:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q swagger-ui-dist@$(SWAGGER_UI_VERSION) && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz && \
	mkdir -p $(CURDIR)/static/vendor/swagger-ui && \
	cp package/swagger-ui-bundle.js package/swagger-ui-bundle.js.LICENSE.txt package/swagger-ui.css package/LICENSE package/NOTICE $(CURDIR)/static/vendor/swagger-ui/ && \
	echo "swagger-ui-dist $(SWAGGER_UI_VERSION) (npm pack swagger-ui-dist@$(SWAGGER_UI_VERSION); refresh with: make swagger-ui SWAGGER_UI_VERSION=x.y.z)" > $(CURDIR)/static/vendor/swagger-ui/VERSION && rm -rf $$tmp

lint:
	$(VENV)/bin/ruff check .

benchmark: install vcsim
	$(PY) -m benchmarks $(BENCH_ARGS)

# clean: the data dir (database, keys, logs); the built vcsim and the venv stay.
clean:
	rm -rf .data

# distclean: everything built or installed here, vcsim and the venv included.
distclean: clean
	rm -rf .build .venv
