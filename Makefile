# swarmplane: the two commands are `make lab` and `make test`; everything they need is set up here.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB_MANAGERS ?= 1
LAB_WORKERS ?= 2
export LAB_MANAGERS LAB_WORKERS
VM_MANAGERS ?= 1
VM_WORKERS ?= 1
VM_LOADBALANCERS ?= 1

.PHONY: help setup venv engine image vm-tools vm-image web-images lab lab-down lab-vm lab-vm-down lint unit sanity integration molecule test bench ee-context clean

help:
	@echo "make lab        local cluster of container hosts + cluster.yml (LAB_MANAGERS=$(LAB_MANAGERS) LAB_WORKERS=$(LAB_WORKERS))"
	@echo "make lab-down   remove the lab"
	@echo "make lab-vm     qemu VMs with Debian's kernel + cluster.yml (VM_MANAGERS=$(VM_MANAGERS) VM_WORKERS=$(VM_WORKERS) VM_LOADBALANCERS=$(VM_LOADBALANCERS))"
	@echo "make lab-vm-down  remove the VM lab"
	@echo "make test       linters, unit tests, ansible-test sanity, integration tests, Molecule scenarios"
	@echo "make ee-context build context of the AWX execution environment (execution-environment.yml) in context/"
	@echo "make bench      timings of cluster.yml, services.yml, adding/removing a node and the kernel data plane, written to docs/benchmarks.md"

venv:
	@scripts/venv.sh

engine:
	@scripts/ensure-docker.sh

image: engine
	@lab/build-image.sh >/dev/null

setup: venv engine image

vm-tools:
	@scripts/ensure-vm-tools.sh

vm-image: vm-tools
	@lab/build-vm-image.sh >/dev/null

web-images: engine
	@lab/build-web-image.sh >/dev/null
	@lab/build-web-image.sh --variant v2 >/dev/null
	@lab/build-web-image.sh --broken >/dev/null

lab: setup
	lab/lab.py up --name lab --managers $(LAB_MANAGERS) --workers $(LAB_WORKERS) --registry --inventory inventories/lab/hosts.yml
	ansible-playbook -i inventories/lab cluster.yml

lab-down:
	lab/lab.py down --name lab

lab-vm: vm-tools venv engine vm-image web-images
	lab/vm.py up --name vm --managers $(VM_MANAGERS) --workers $(VM_WORKERS) --loadbalancers $(VM_LOADBALANCERS) --inventory inventories/lab-vm/hosts.yml
	ansible-playbook -i inventories/lab-vm cluster.yml

lab-vm-down:
	lab/vm.py down --name vm

lint: venv
	yamllint -s .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

unit: venv
	pytest -q tests/unit

# ansible-test sanity on the built collection (scripts/ansible-test-sanity.sh: offline pip bootstrap, temporary tree).
sanity: venv
	scripts/ansible-test-sanity.sh

# The build context of the execution environment for AWX (execution-environment.yml) in context/; building the
# image from it (ansible-builder build, or docker build context/) needs the base image's registry.
ee-context: venv
	rm -rf dist context
	ansible-galaxy collection build --output-path dist .
	mv dist/swarmplane-cluster-*.tar.gz dist/swarmplane-cluster.tar.gz
	ansible-builder create -f execution-environment.yml -c context

# A failed run names its failed tests again at the very end (scripts/test-failures.py), where CI's log tail shows them.
integration: setup
	rm -f .results/integration.xml
	pytest -q tests/integration --junitxml=.results/integration.xml || { python3 scripts/test-failures.py .results/integration.xml; exit 1; }

# The kernel scenario boots qemu VMs from the cached VM image (lab/build-vm-image.sh).
molecule: setup vm-image web-images
	rm -f .results/molecule-*.xml
	cd $(CURDIR) && molecule test --all || { python3 scripts/test-failures.py .results/molecule-*.xml; exit 1; }

test: lint unit sanity integration molecule

bench: setup vm-image web-images
	python3 bench/cluster_bench.py
	python3 bench/services_bench.py
	python3 bench/lifecycle_bench.py
	python3 bench/filters_bench.py
	python3 bench/kernel_bench.py

clean: lab-down lab-vm-down
	rm -rf .lab
