# lehttpd: the two quick-start targets work on a fresh Debian 12 machine as root.
#   make demo  installs everything, starts a local Pebble and runs the main job against it
#   make test  installs everything and runs the whole test suite (what .ci/run calls)
#   make man completions   generate build/man/lehttpd.1 and build/completions/* from the argument parser
#   make install-docs      install them (PREFIX=/usr/local, DESTDIR for packaging)

APT_PACKAGES := pebble apache2 libaugeas-dev augeas-lenses pkg-config gcc libffi-dev python3-venv python3-dev openssl ca-certificates testssl.sh etcd-server etcd-client haproxy
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PYTEST_ARGS ?=

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: demo test deps system-packages venv bench clean man completions install-docs

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml setup.py
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

deps: system-packages $(VENV)/.installed

demo: deps
	$(VPY) -m lehttpd.demo

test: deps
	$(VPY) -m pytest -q $(PYTEST_ARGS)

bench: deps
	$(VPY) bench/bench_issue.py

man: deps
	$(VPY) tools/gen_docs.py --man build/man

completions: deps
	$(VPY) tools/gen_docs.py --completions build/completions

install-docs: man completions
	install -D -m 0644 build/man/lehttpd.1 $(DESTDIR)$(PREFIX)/share/man/man1/lehttpd.1
	install -D -m 0644 build/completions/lehttpd $(DESTDIR)$(PREFIX)/share/bash-completion/completions/lehttpd
	install -D -m 0644 build/completions/_lehttpd $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_lehttpd

clean:
	rm -rf $(VENV) demo-state build dist
