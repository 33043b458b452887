# otel-rust-agent
#   make demo    install what is missing, build, run the agent on the demo service
#   make test    install what is missing, build, run every test (as root)
#   make bench   side-by-side benchmark, with and without the agent
#   make demo-jaeger     the demo exported to a Jaeger built from the Go module proxy; prints the UI address
#   make image           the container image (podman; Debian base made with debootstrap)
#   make manifests       deploy/kubernetes/ rendered from the Helm chart
#   make test-container  the container tests alone (also part of make test)
#   make fuzz            mutation fuzzing of the readers of untrusted bytes, and inspect on mutated binaries (not in make test)
#   make soak            30 minutes of steady load: agent CPU, RSS, spans/s, drops -> docs/soak/ (not in make test)
#   make test-matrix  the compatibility table: fixtures x compilers x profiles, into docs/compatibility.md
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Each library's BPF programs live in its folder (src/libs/<lib>/probes.bpf.c)
# and build into build/bpf/<lib>.bpf.o; bpf/ holds the shared headers and the
# bench's calibration program.
LIB_BPF_SRC := $(wildcard src/libs/*/probes.bpf.c)
LIB_BPF_OBJ := $(patsubst src/libs/%/probes.bpf.c,build/bpf/%.bpf.o,$(LIB_BPF_SRC))
BPF_OBJ := $(LIB_BPF_OBJ) build/bpf/calibrate.bpf.o build/bpf/process.bpf.o build/bpf/propagation.bpf.o
# src/propagation/context.h: the BPF-side trace context store several libraries' programs share.
BPF_HDR := $(wildcard bpf/include/*.h) $(wildcard src/propagation/*.h)
TS_SRC  := $(shell find src test tools bench -name '*.ts' 2>/dev/null)

.PHONY: fuzz soak all setup build bpf ts apps libotelctx demo test test-unit test-e2e test-matrix toolchains test-deploy test-container deploy-tools demo-jaeger jaeger-screenshot image manifests bench bench-pipeline clean

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
BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 -Ibpf/include -Ibuild/bpf

build/bpf/calibrate.bpf.o: bpf/calibrate.bpf.c $(BPF_HDR) build/bpf/vmlinux.h
	clang $(BPF_CFLAGS) -c $< -o $@

# The agent's own programs: process life events (exec) of traced processes.
build/bpf/process.bpf.o: bpf/process.bpf.c $(BPF_HDR) build/bpf/vmlinux.h
	clang $(BPF_CFLAGS) -c $< -o $@

# Outgoing trace context: sock_ops + sk_msg programs (src/propagation/README.md).
build/bpf/propagation.bpf.o: src/propagation/propagation.bpf.c src/libs/hyper-h1-client/events.h src/libs/h2-client/events.h $(BPF_HDR) build/bpf/vmlinux.h
	clang $(BPF_CFLAGS) -c $< -o $@

.SECONDEXPANSION:
# hyper-h1-client reads the application's OpenTelemetry current span (otel-sdk's reader).
build/bpf/hyper-h1-client.bpf.o: src/libs/otel-sdk/current.h src/libs/otel-sdk/events.h
build/bpf/%.bpf.o: src/libs/%/probes.bpf.c $$(wildcard src/libs/%/*.h) $(BPF_HDR) build/bpf/vmlinux.h
	clang $(BPF_CFLAGS) -c $< -o $@

ts: dist/.built

dist/.built: $(TS_SRC) tsconfig.json package-lock.json
	npx tsc -p tsconfig.json
	@touch $@

# The target apps (demo, fixtures, bench) are ordinary release builds.
apps:
	cd apps && cargo build --release --locked -q

demo: build
	node dist/tools/demo.js

test: build deploy-tools
	node --test --test-concurrency=1 --test-timeout=1800000 dist/test/unit/ dist/test/e2e/ dist/test/deploy/

test-unit: build
	node --test --test-concurrency=1 dist/test/unit/

test-e2e: build
	node --test --test-concurrency=1 --test-timeout=600000 dist/test/e2e/

# Debian's rustc 1.85 and 1.96 (rustc-web), unpacked into build/toolchains/
# (cached); the tests and the matrix fetch them themselves when they need them.
toolchains:
	@scripts/toolchains.sh

# About an hour on 2 vCPUs: every fixture of src/libs/*/matrix.ts x three
# compilers x the release profiles. MATRIX_ARGS narrows it (see tools/test-matrix.ts);
# MATRIX_ARGS=--resume continues an interrupted run (rows without a failing cell are kept).
# MATRIX_FIXTURES=h2-axum,tonic-server,reqwest12,tonic-client selects fixtures; with
# MATRIX_ARGS='--merge --group-builds --profiles default,fat' a partial run updates only its rows
# of docs/compatibility.md (the others are kept, the rows never run are listed).
test-matrix: build toolchains
	node dist/tools/test-matrix.js $(MATRIX_ARGS)

# Deployment: Helm chart, container image, systemd unit, Jaeger. The tools are
# built or installed once and cached outside the repository
# (~/.cache/otel-rust-agent): helm, jaeger and a minimal OpenTelemetry
# Collector (scripts/otelcol, for the export test) from the Go module proxy
# (minutes, the first time), podman, runc and debootstrap from Debian.
deploy-tools:
	@scripts/deploy-tools.sh helm >/dev/null
	@scripts/deploy-tools.sh jaeger >/dev/null
	@scripts/deploy-tools.sh otelcol >/dev/null
	@scripts/deploy-tools.sh container
	@scripts/deploy-tools.sh systemd

test-deploy: build deploy-tools
	node --test --test-concurrency=1 --test-timeout=1200000 dist/test/deploy/

test-container: build
	@scripts/deploy-tools.sh container
	node --test --test-concurrency=1 --test-timeout=1200000 dist/test/deploy/container.test.js

image: build
	@scripts/deploy-tools.sh container
	deploy/container/build-image.sh

manifests:
	deploy/kubernetes/render.sh > deploy/kubernetes/otel-rust-agent.yaml.tmp && mv deploy/kubernetes/otel-rust-agent.yaml.tmp deploy/kubernetes/otel-rust-agent.yaml

demo-jaeger: build
	@scripts/deploy-tools.sh jaeger >/dev/null
	@scripts/deploy-tools.sh otelcol >/dev/null
	node dist/tools/jaeger-demo.js

# docs/jaeger-trace.png: needs Jaeger UI assets (JAEGER_UI_ASSETS, see README).
jaeger-screenshot: build
	@scripts/deploy-tools.sh jaeger >/dev/null
	@scripts/deploy-tools.sh otelcol >/dev/null
	@scripts/deploy-tools.sh chromium
	node dist/tools/jaeger-demo.js --screenshot docs/jaeger-trace.png

bench: build
	node dist/bench/run.js

# The agent's user-space pipeline alone (decode, assembly, OTLP encoding and
# sending), replaying recorded ring records on one core.
bench-pipeline: build
	node dist/bench/pipeline.js

# A fixed budget (FUZZ_SCALE, FUZZ_INSPECT_RUNS, FUZZ_SEED): new failures are
# saved under test/fuzz/corpus/ and replayed by make test.
fuzz: build
	node dist/test/fuzz/run.js

soak: build
	node dist/tools/soak.js

clean:
	rm -rf build dist
