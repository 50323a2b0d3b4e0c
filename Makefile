# caskd build. `make run`, `make test` and `make fuzz` first install the
# Debian packages each needs, if missing (the deps-* targets), so each
# works on a fresh machine.
#
# Trees:  build/        release objects, binary build/caskd, test binaries
#         build/asan/   the same with ASan + UBSan; unit suites run here too
#         build/fuzz/   libFuzzer harnesses (clang, ASan + UBSan)

CC       ?= gcc
PKGS     := libevent libsystemd
CPPFLAGS := -D_GNU_SOURCE -I.
CWARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CFLAGS   += $(CWARN) -pthread
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent -lsystemd) -pthread
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined

# Debian packages, a set per target so that none waits for packages it
# does not use (clang alone took `make run` past two minutes). DEB_RUN
# builds and runs caskd (libc6-dev too: gcc only recommends it); DEB_FUZZ
# adds clang and its runtime libraries, libFuzzer among them; DEB_TEST,
# for `make test`, which runs fuzz-smoke too, adds Criterion, systemd
# (systemd-analyze checks contrib/'s units; without it that test skips)
# and curl (the README's examples use it).
DEB_RUN  := gcc make pkg-config libc6-dev libevent-dev libsystemd-dev
DEB_FUZZ := $(DEB_RUN) clang libclang-rt-dev
# DEB_CLUSTER: cluster mode (make cluster) and its drills (tests/cluster/):
# etcd and HAProxy really running, nft rules for partitions, iproute2 for
# the namespaces. Defined before DEB_TEST, which := expands at once.
DEB_CLUSTER := etcd-server etcd-client haproxy nftables iproute2
DEB_TEST := $(DEB_FUZZ) libcriterion-dev systemd curl $(DEB_CLUSTER)

LIB_SRC  := $(wildcard ipc/*.c) $(wildcard engine/*.c) \
            $(filter-out server/main.c,$(wildcard server/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
ITEST_SUPPORT := $(filter-out tests/integration/test_%.c,$(wildcard tests/integration/*.c))
ITEST_SRC := $(wildcard tests/integration/test_*.c)
SRC_HDRS := $(wildcard ipc/*.h engine/*.h server/*.h)
HDRS     := $(SRC_HDRS) $(wildcard tests/*/*.h)

empty :=
space := $(empty) $(empty)
B := build
A := build/asan
F := build/fuzz

LIB_OBJ   := $(LIB_SRC:%.c=$(B)/%.o)
LIB_AOBJ  := $(LIB_SRC:%.c=$(A)/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_ABIN := $(UNIT_SRC:tests/unit/%.c=$(A)/tests/%)
ITEST_BIN := $(ITEST_SRC:tests/integration/test_%.c=$(B)/tests/it_%)
ITEST_SUP_OBJ := $(ITEST_SUPPORT:%.c=$(B)/%.o)

# The source revision caskd reports (server/version.h): the stamp file
# changes only when the revision does, so only version.o is rebuilt then.
REVISION := $(shell git --no-optional-locks describe --always --dirty 2>/dev/null || echo unknown)

PORT     ?= 7070
DATA_DIR ?= ./data
RUN_ARGS ?=

deps-cluster: DEB_WANT = $(DEB_RUN) $(DEB_CLUSTER)

.PHONY: integration-suites integration-both asan-and-refusals all deps deps-run deps-fuzz deps-test deps-cluster cluster bench-cluster run test unit unit-asan \
        integration integration-asan clean asan fuzz fuzz-smoke layers readme drill FORCE \
        cluster-unit cluster-drill drill-cluster cluster-selftest cluster-refusals
all: $(B)/caskd

$(B)/revision.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(REVISION)' | cmp -s - $@ || echo '$(REVISION)' > $@
$(B)/server/version.o $(A)/server/version.o: $(B)/revision.stamp
$(B)/server/version.o $(A)/server/version.o: CPPFLAGS += -DCASKD_REVISION='"$(REVISION)"'

# deps-X installs what of DEB_X is missing (apt-get, as root or through
# sudo); `deps` is everything, as `make test` needs.
deps-run:  DEB_WANT = $(DEB_RUN)
deps-fuzz: DEB_WANT = $(DEB_FUZZ)
deps-test: DEB_WANT = $(DEB_TEST)
deps: deps-test
deps-run deps-fuzz deps-test deps-cluster:
	@missing=""; for p in $(DEB_WANT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(B)/%.o: %.c $(SRC_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(B)/tests/%.o: tests/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(A)/tests/%.o: tests/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CWARN) -pthread $(SANFLAGS) -c -o $@ $<
$(A)/%.o: %.c $(SRC_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CWARN) -pthread $(SANFLAGS) -c -o $@ $<

# Rebuilt from scratch: `ar r` would keep members of deleted sources.
$(B)/libcaskd.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(A)/libcaskd.a: $(LIB_AOBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/caskd: $(B)/server/main.o $(B)/libcaskd.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(A)/caskd: $(A)/server/main.o $(A)/libcaskd.a
	$(CC) $(SANFLAGS) -pthread -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libcaskd.a
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion $(LDLIBS)
$(A)/tests/%: $(A)/tests/unit/%.o $(A)/libcaskd.a
	$(CC) $(SANFLAGS) -pthread -o $@ $^ -lcriterion $(LDLIBS)
$(B)/tests/it_%: $(B)/tests/integration/test_%.o $(ITEST_SUP_OBJ) $(B)/libcaskd.a
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

asan: $(A)/caskd $(UNIT_ABIN)

# A group to try: etcd, three members and HAProxy on loopback (Ctrl-C stops).
cluster: deps-cluster
	$(MAKE) $(B)/caskd
	CASKD=$(B)/caskd contrib/cluster-local.sh

run: deps-run
	$(MAKE) $(B)/caskd
	./$(B)/caskd --listen 127.0.0.1:$(PORT) --data-dir $(DATA_DIR) $(RUN_ARGS)

# Unit suites run twice: as shipped, and under ASan + UBSan.
unit: $(UNIT_BIN)
	@set -e; for t in $^; do echo "== $$t"; ./$$t --jobs 2; done
unit-asan: $(UNIT_ABIN)
	@set -e; for t in $^; do echo "== $$t (asan+ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./$$t --jobs 2; done
# Integration suites start the real daemon (CASKD_BIN) on free ports.
# The job-crash sweeps take their quick sample here (every K of every
# sweep runs in `make drill`), so that the cluster drill fits in `make
# test`'s ten minutes.
integration: $(B)/caskd $(ITEST_BIN)
	$(MAKE) integration-suites ITEST_RUN="$(ITEST_BIN)"
	$(MAKE) cluster-unit cluster-drill cluster-refusals
ITEST_RUN ?= $(ITEST_BIN)
integration-suites: $(B)/caskd $(ITEST_BIN)
	@set -e; for t in $(ITEST_RUN); do echo "== $$t"; \
	  CASKD_JOBCRASH_QUICK=1 CASKD_BIN=$(CURDIR)/$(B)/caskd ./$$t --jobs 1; done

# ---- cluster drills (tests/cluster/, ../shared/CLUSTER.md) -----------------
# cluster_workload records histories through HAProxy and dumps members;
# checker.c judges them (cluster_check is it as a command; the unit suite
# feeds it synthetic histories); it_cluster runs the drill in network
# namespaces (tests/cluster/rig.sh), as root, with etcd and HAProxy.
# A short drill runs in `make integration` (so `make test`); `make
# drill-cluster` runs DRILL_CLUSTER_CYCLES fault cycles of every kind.
# CASKD_CLUSTER_SKIP=1 skips the drills (not root, no etcd); without it a
# missing tool fails them. rig.sh guard removes every namespace the drill
# made, whatever way it ends.
CL_OBJ := $(B)/tests/cluster/checker.o $(B)/tests/cluster/chttp.o
CL_BIN := $(B)/tests/cluster_workload $(B)/tests/cluster_check
$(B)/tests/cluster_workload: $(B)/tests/cluster/workload.o $(CL_OBJ)
	$(CC) $(CFLAGS) -o $@ $^
$(B)/tests/cluster_check: $(B)/tests/cluster/check_main.o $(CL_OBJ)
	$(CC) $(CFLAGS) -o $@ $^
$(B)/tests/cluster_test_checker: $(B)/tests/cluster/test_checker.o $(CL_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion
$(B)/tests/it_cluster: $(B)/tests/cluster/test_cluster.o $(CL_OBJ) $(ITEST_SUP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

# Members that must refuse to start, a replica whose disk fills: etcd and
# members on 127.0.0.1 (no namespaces), as root for the tmpfs.
$(B)/tests/it_cluster_refusals: $(B)/tests/cluster/test_refusals.o $(ITEST_SUP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion $(LDLIBS)
cluster-refusals: $(B)/caskd $(B)/tests/it_cluster_refusals
	CASKD_BIN=$(CURDIR)/$(B)/caskd ./$(B)/tests/it_cluster_refusals --jobs 1

cluster-unit: $(B)/tests/cluster_test_checker
	./$< --jobs 2
CLUSTER_ENV = CASKD_BIN=$(CURDIR)/$(B)/caskd \
	CASKD_CLUSTER_WORKLOAD=$(CURDIR)/$(B)/tests/cluster_workload \
	CASKD_CLUSTER_RIG=$(CURDIR)/tests/cluster/rig.sh \
	RIG_STATE=$$(mktemp -d /tmp/caskd-rig-XXXXXX)
cluster-drill: $(B)/caskd $(CL_BIN) $(B)/tests/it_cluster
	$(CLUSTER_ENV) tests/cluster/rig.sh guard ./$(B)/tests/it_cluster \
	  --jobs 1 --filter 'cluster/short_drill'
# The drill's own test, needing no cluster code: against a correct mock
# group (tests/cluster/mock_member.py, members sharing one file) the short
# drill must pass; against a mock that never replicates it must fail.
cluster-selftest: $(CL_BIN) $(B)/tests/it_cluster
	$(CLUSTER_ENV) CASKD_BIN=$(CURDIR)/tests/cluster/mock_member.py MOCK_MODE=shared \
	  tests/cluster/rig.sh guard ./$(B)/tests/it_cluster --jobs 1 --filter 'cluster/short_drill'
	@if $(CLUSTER_ENV) CASKD_BIN=$(CURDIR)/tests/cluster/mock_member.py MOCK_MODE=local \
	  tests/cluster/rig.sh guard ./$(B)/tests/it_cluster --jobs 1 --filter 'cluster/short_drill' \
	  >$(B)/cluster-selftest-broken.log 2>&1; then \
	  echo "cluster-selftest: the drill passed a group that never replicates"; exit 1; \
	else grep -E '^(FAIL|checked)' $(B)/cluster-selftest-broken.log | cut -c1-100 | sort | uniq -c | sort -rn | head; \
	  echo "cluster-selftest: ok, the drill fails a group that never replicates"; fi

DRILL_CLUSTER_CYCLES ?= 36
drill-cluster: $(B)/caskd $(CL_BIN) $(B)/tests/it_cluster
	$(CLUSTER_ENV) CASKD_CLUSTER_CYCLES=$(DRILL_CLUSTER_CYCLES) \
	  tests/cluster/rig.sh guard ./$(B)/tests/it_cluster --jobs 1 --filter 'cluster/long_drill'
	$(CLUSTER_ENV) tests/cluster/rig.sh guard ./$(B)/tests/it_cluster --jobs 1 \
	  --filter 'cluster/catches_*'

# ... and again against the daemon built with ASan + UBSan: a sanitizer
# report makes the process abort, which fails the drill that caused it.
# The job-crash sweeps and the power-cut drill (tens of daemon starts
# each, for crash semantics the plain run checks; the files they leave
# are what fuzz_scan and fuzz_idx feed the same code) are left to the
# plain run and `make drill`; the sanitizer run of it_compact still
# kills jobs at every step. That keeps `make test` within ten minutes on
# 2 cores.
ASAN_POWERCUTS ?= 30
ASAN_SKIP := $(B)/tests/it_jobcrash $(B)/tests/it_powercut
ITEST_ARUN ?= $(filter-out $(ASAN_SKIP),$(ITEST_BIN))
integration-asan: $(A)/caskd $(ITEST_BIN)
	@set -e; for t in $(ITEST_ARUN); do \
	  echo "== $$t (daemon with asan+ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CASKD_POWERCUTS=$(ASAN_POWERCUTS) CASKD_JOBCRASH_QUICK=1 \
	  CASKD_BIN=$(CURDIR)/$(A)/caskd ./$$t --jobs 1; done

# Everything the suites run is built first, on every core; the suites
# then run one after another (they time daemons, and share the cores).
TEST_BUILD = $(B)/caskd $(UNIT_BIN) $(ITEST_BIN) $(A)/caskd $(UNIT_ABIN) \
	$(CL_BIN) $(B)/tests/it_cluster $(B)/tests/it_cluster_refusals \
	$(B)/tests/cluster_test_checker $(FUZZ_BIN)
# The integration suites mostly wait (daemons starting, stopping, being
# killed; the cores are about 40% busy), so the ones that judge only
# answers run as two streams side by side: the plain daemon's and the
# sanitized daemon's, one suite at a time each (--output-sync keeps a
# stream's output together). The suites that judge timing or how load
# spreads (slow clients, worker balance, crash and power-cut drills, the
# cluster drills) then run alone, as they always did.
# The job-crash sweeps kill at a syscall count, not at a time, and the
# cluster refusals judge exit codes: they share the streams. make test's
# power-cut drill makes TEST_POWERCUTS cuts (make drill: 600).
ITEST_TIMED := $(addprefix $(B)/tests/it_,bounded daemon drills powercut)
TEST_POWERCUTS ?= 40
integration-both: $(B)/caskd $(A)/caskd $(ITEST_BIN)
	$(MAKE) -j2 --output-sync=target integration-suites asan-and-refusals \
	  ITEST_RUN="$(filter-out $(ITEST_TIMED),$(ITEST_BIN))" \
	  ITEST_ARUN="$(filter-out $(ITEST_TIMED) $(ASAN_SKIP),$(ITEST_BIN))"
	CASKD_POWERCUTS=$(TEST_POWERCUTS) $(MAKE) integration-suites ITEST_RUN="$(ITEST_TIMED)"
	$(MAKE) integration-asan ITEST_ARUN="$(filter-out $(ASAN_SKIP),$(ITEST_TIMED))"
	$(MAKE) cluster-drill
asan-and-refusals:
	$(MAKE) cluster-unit cluster-refusals integration-asan
TEST_STAGES := layers unit unit-asan integration-both fuzz-smoke readme
test: deps-test
	@t0=$$(date +%s); $(MAKE) -j$(shell nproc) $(TEST_BUILD); \
	  echo "== make test: build took $$(( $$(date +%s) - t0 )) s"
	@set -e; for s in $(TEST_STAGES); do t0=$$(date +%s); $(MAKE) $$s; \
	  echo "== make test: $$s took $$(( $$(date +%s) - t0 )) s"; done

# The README's "Use it" examples, run in order against a fresh daemon:
# each must print what the README shows (tests/readme_examples.sh).
readme: $(B)/caskd
	tests/readme_examples.sh $(B)/caskd

# The drills at their long length, apart from `make test`: every job
# killed at every one of its calls through engine/io, both ways
# (test_jobcrash with CASKD_JOBCRASH_FULL=1), and DRILL_POWERCUTS power
# cuts.
DRILL_POWERCUTS ?= 600
drill: $(B)/caskd $(B)/tests/it_jobcrash $(B)/tests/it_powercut
	CASKD_JOBCRASH_FULL=1 CASKD_BIN=$(CURDIR)/$(B)/caskd ./$(B)/tests/it_jobcrash --jobs 1
	CASKD_POWERCUTS=$(DRILL_POWERCUTS) CASKD_BIN=$(CURDIR)/$(B)/caskd ./$(B)/tests/it_powercut --jobs 1

# Dependencies point one way (server -> engine -> ipc), the server uses
# the engine's API, never its shared-memory layout or internals, and no
# files import each other in a circle (tests/layers.sh, over the
# directories of LAYERS_CYCLE_DIRS).
LAYERS_CYCLE_DIRS := ipc engine server
# ... and no source file there is longer than LAYERS_MAX_LINES, so each
# reads top to bottom.
LAYERS_SIZE_DIRS := ipc engine server
LAYERS_MAX_LINES := 1200
ENGINE_PRIVATE := engine/shared.h engine/index.h engine/db.h engine/area.h engine/job_int.h \
                  engine/repair.h engine/recover.h engine/write.h engine/space.h
layers:
	@bad=$$(grep -lE '#include "($(subst $(space),|,$(ENGINE_PRIVATE)))"' server/*.c server/*.h); \
	if [ -n "$$bad" ]; then echo "layers: server/ includes engine internals: $$bad"; exit 1; fi; \
	bad=$$(grep -lE '#include "(server|engine)/' ipc/*.c ipc/*.h); \
	if [ -n "$$bad" ]; then echo "layers: ipc/ includes engine or server headers: $$bad"; exit 1; fi; \
	bad=$$(grep -lE '#include "server/' engine/*.c engine/*.h); \
	if [ -n "$$bad" ]; then echo "layers: engine/ includes server headers: $$bad"; exit 1; fi; \
	tests/layers.sh $(LAYERS_CYCLE_DIRS) || exit 1; \
	bad=$$(for f in $(foreach d,$(LAYERS_SIZE_DIRS),$(d)/*.c $(d)/*.h); do \
	  [ $$(wc -l < $$f) -le $(LAYERS_MAX_LINES) ] || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "layers: over $(LAYERS_MAX_LINES) lines: $$bad"; exit 1; fi; \
	echo "layers: ok"

# Fuzzing: each tests/fuzz/fuzz_NAME.c is a libFuzzer harness (a new file
# is picked up as it is), built with Debian's clang, ASan and UBSan over
# the whole library, seeded from tests/fuzz/corpus/NAME/ and replaying
# tests/fuzz/regressions/NAME/ first (tests/fuzz/run.sh).
# `make fuzz FUZZ_SECONDS=N` fuzzes each for N seconds, one at a time;
# `make test` runs fuzz-smoke: the regressions, the seeds and a few seconds.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 2
FUZZ_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(F)/fuzz_%)
LIB_FOBJ     := $(LIB_SRC:%.c=$(F)/%.o)

$(F)/%.o: %.c $(SRC_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(CWARN) -pthread $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(F)/libcaskd.a: $(LIB_FOBJ)
	rm -f $@ && ar rcs $@ $^
$(F)/fuzz_%: tests/fuzz/fuzz_%.c $(F)/libcaskd.a $(HDRS)
	$(FUZZ_CC) $(CPPFLAGS) $(CWARN) -pthread $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(F)/libcaskd.a $(LDLIBS)

fuzz: deps-fuzz
	$(MAKE) $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)
fuzz-smoke: deps-fuzz
	$(MAKE) $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_NAMES)

clean:
	rm -rf build

# A group's figures (docs/cluster.md): PUT through a majority against one
# caskd, failover outage over kills and pauses, catch-up of a new member.
bench-cluster: deps-cluster $(B)/caskd
	bench/cluster.sh

# Benchmark: caskd beside nginx, redis and the naive design (bench/run.sh,
# docs/benchmarks.md). BENCH_DURATION=N changes the seconds per run.
.PHONY: bench
bench: $(B)/caskd
	bench/run.sh
