# otel-rust-agent
#   make demo    install what is missing, build, run the agent on the demo service
#   make test    install what is missing, build, run every test (as root)
#   make bench   side-by-side benchmark, with and without the agent
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,build/bpf/%.bpf.o,$(BPF_SRC))
BPF_HDR := $(wildcard bpf/include/*.h)
TS_SRC  := $(shell find src test tools bench -name '*.ts' 2>/dev/null)

.PHONY: all setup build bpf ts apps libotelctx demo test test-unit test-e2e bench clean

all: build

setup:
	@scripts/setup.sh

build: setup bpf ts apps libotelctx

# libotelctx: OpenTelemetry thread and process context for native code (C).
libotelctx:
	$(MAKE) -s -C libotelctx

bpf: $(BPF_OBJ)

build/bpf/vmlinux.h:
	@mkdir -p build/bpf
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# CO-RE: -g keeps BTF for relocations; the kernel's own types come from vmlinux.h.
build/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDR) build/bpf/vmlinux.h
	clang -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 -Ibpf/include -Ibuild/bpf -c $< -o $@

ts: dist/.built

dist/.built: $(TS_SRC) tsconfig.json package-lock.json
	npx tsc -p tsconfig.json
	@touch $@

# The target apps (demo, fixtures, bench) are ordinary release builds.
apps:
	cd apps && cargo build --release --locked -q

demo: build
	node dist/tools/demo.js

test: build
	node --test --test-concurrency=1 --test-timeout=600000 dist/test/unit/ dist/test/e2e/

test-unit: build
	node --test --test-concurrency=1 dist/test/unit/

test-e2e: build
	node --test --test-concurrency=1 --test-timeout=600000 dist/test/e2e/

bench: build
	node dist/bench/run.js

clean:
	rm -rf build dist
