# Two entry points, each creating or reusing the local virtual environment .venv idempotently.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test

$(STAMP): pyproject.toml
	command -v bwrap >/dev/null && test -x /usr/bin/python3 || { s=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$s apt-get update -q && $$s apt-get install -y -q bubblewrap python3 libseccomp2; }  # the code sandbox
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0  # this machine's CPU wheel, first: never a CUDA build
	$(VENV)/bin/pip install -q -e '.[all,dev]'
	$(VENV)/bin/python -c "from rollout.embedded import prepare_default_model as p; print('default model:', p())"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lachesis demo

test: $(STAMP)
	$(VENV)/bin/pytest -q
