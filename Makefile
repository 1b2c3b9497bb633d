# opsconsole — two commands: `make run` and `make test`.
# Both install what is missing first (Debian packages, the virtualenv, vcsim).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := redis-server golang-go golang-github-vmware-govmomi-dev qemu-utils libpq-dev postgresql chromium
HTMX_VERSION ?= 2.0.11
export OPSCONSOLE_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run stop test install apt venv vcsim htmx lint benchmark clean

run: install vcsim
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py runstack

stop:
	@if [ -f "$(OPSCONSOLE_DATA_DIR)/runstack.pid" ]; then kill -TERM $$(cat "$(OPSCONSOLE_DATA_DIR)/runstack.pid") && echo "stopping opsconsole"; else echo "opsconsole is not running"; fi

test: install vcsim
	$(PY) -m pytest $(PYTEST_ARGS)

install: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

vcsim:
	bash tools/vcsim/build.sh

# Refresh the vendored htmx from the npm package (keeps its LICENSE).
htmx:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz && \
	cp package/dist/htmx.min.js package/LICENSE $(CURDIR)/static/vendor/htmx/ && \
	echo "htmx.org $(HTMX_VERSION) (npm pack htmx.org@$(HTMX_VERSION); refresh with: make htmx HTMX_VERSION=x.y.z)" > $(CURDIR)/static/vendor/htmx/VERSION && rm -rf $$tmp

lint:
	$(VENV)/bin/ruff check .

benchmark: install vcsim
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf .build .data
