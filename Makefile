# radview: `make demo` opens the viewer on the demo study, `make test` runs the tests, `make bench` the
# benchmarks. Each installs what it needs: Debian packages (Qt's xcb libraries, xvfb, dicom3tools, dcmtk, elastix,
# orthanc + orthanc-dicomweb: the real PACS the PACS tests start) and a
# local .venv with the project, torch pinned to its CPU wheel.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.radview-installed
APT_PACKAGES := xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-cursor0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
	libxcb-xinerama0 libxcb-xkb1 libfontconfig1 libdbus-1-3 dicom3tools dcmtk elastix orthanc orthanc-dicomweb
DEMO_DIR := demo
NO_DEPS_PACKAGES := dynamic-network-architectures==0.4.4 nnunetv2==2.8.1 acvl-utils==0.2.6 batchgenerators==0.25.5 \
	batchgeneratorsv2==0.3.6

.PHONY: demo test bench system-deps venv lint clean

demo: $(STAMP)
	$(BIN)/radview demo-data $(DEMO_DIR)
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
		$(BIN)/radview --demo; \
	else \
		echo "No display: rendering the viewer under Xvfb to $(DEMO_DIR)/screenshot.png"; \
		QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/radview --demo --screenshot $(DEMO_DIR)/screenshot.png; \
	fi

# The tests run in TEST_WORKERS processes (pytest-xdist), a test file per process at a time; each worker
# draws its windows on an Xvfb of its own, which outlives it (tests/conftest.py).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check viewer ai tests benchmarks
	$(BIN)/pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; QT_QPA_PLATFORM=xcb xvfb-run -a $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check viewer ai tests benchmarks

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU wheel first, so no dependency can pull a multi-GB CUDA build of torch
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# nnU-Net v2 support without torchvision: these declare timm/torchvision, which would replace the torch pin
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS_PACKAGES)
	touch $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; else \
			echo "radview: cannot install$$missing: run 'apt-get install$$missing' as root, then make again" >&2; exit 1; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing \
			|| { echo "radview: apt-get could not install$$missing" >&2; exit 1; }; \
	fi

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
