# cgfence: an egress allowlist for cgroups, enforced by eBPF from the host.
#
#   make            build everything into build/
#   make demo       install missing build dependencies, build, show a fenced command
#   make check      install what the tests need, build, run every test (then again
#                   against the sanitizer build)
#   make san        the userspace again with ASan and UBSan, into build/san/
#   make bench      cgfence against iptables+ipset, nftables, systemd-style LPM (root)
#   make bench-cgfence  cgfence's own costs in detail: hooks, daemon, DNS proxy (root)
#   make bench-dns  the filtering DNS proxy against dnsmasq (root)
#   make vmlinux    regenerate vmlinux/$(ARCH)/vmlinux.h from the running kernel's BTF

ARCH ?= $(shell uname -m)
BUILD := build
# The BPF objects and skeletons: one set, shared by the sanitizer build (SAN=1 below).
BPF_BUILD := $(BUILD)
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc

VMLINUX_DIR := vmlinux/$(ARCH)
BPF_ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	    -Wno-unused-parameter -Wformat=2
# make SAN=1 (what `make san` runs): every userspace binary with AddressSanitizer
# (LeakSanitizer included) and UndefinedBehaviorSanitizer, into build/san/, for the
# second pass of make check; UB aborts like a memory error does.  Clang (SAN_CC), even when
# CC names another compiler: its runtime is one library, where gcc's separate libubsan
# ignores UBSAN_OPTIONS' log_path next to ASan.
SAN_CC ?= $(CLANG)
ifeq ($(SAN),1)
BUILD := $(BPF_BUILD)/san
override CC := $(SAN_CC)
CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined
endif
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -Iinclude -Iuser/lib -I$(BPF_BUILD)
LDLIBS := -lbpf -lelf -lz -lcares -ljansson -lldns -lseccomp

BPF_CFLAGS := -target bpf -g -O2 -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) \
	      -I$(VMLINUX_DIR) -Iinclude -Ibpf

LIB_SRCS := $(wildcard user/lib/*.c)
LIB_OBJS := $(patsubst user/lib/%.c,$(BUILD)/lib/%.o,$(LIB_SRCS))
LIB := $(BUILD)/libcgfence.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRCS))
USER_BINS := $(BUILD)/cgfence $(BUILD)/cgfenced $(BUILD)/cgfence-hook $(UNIT_BINS) $(TOOL_BINS)

# Fuzz targets (libFuzzer with ASan and UBSan), over the project's own parsers.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_SRCS := user/lib/policy.c user/lib/resolve.c user/lib/oci.c user/lib/request.c \
		 user/lib/conf.c user/lib/dnsproxy.c
FUZZ_LDLIBS := -lcares -ljansson -lldns

# One object per BPF source, each with its skeleton (cgfence_bpf, boundary_bpf),
# shared by the sanitizer build.
BPF_SRCS := bpf/cgfence.bpf.c bpf/boundary.bpf.c
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BPF_BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BPF_BUILD)/%.skel.h,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/*.h) include/cgfence.h $(VMLINUX_DIR)/vmlinux.h

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY: $(BPF_OBJS) $(SKELS)
.PHONY: all deps test-deps demo-deps demo check fuzz bench bench-cgfence bench-dns install vmlinux \
	clean

all: $(USER_BINS) $(FUZZ_BINS)

# The sanitizer build: this Makefile again with SAN=1, once the skeleton it shares exists.
.PHONY: san san-bins
san: $(SKELS)
	$(Q)$(MAKE) --no-print-directory SAN=1 san-bins

san-bins: $(USER_BINS)

$(BUILD) $(BUILD)/lib $(BUILD)/tests:
	$(Q)mkdir -p $@

$(BPF_BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	$(Q)mkdir -p $(BPF_BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o
	$(Q)rm -f $@.tmp.o

$(BPF_BUILD)/%.skel.h: $(BPF_BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/lib/%.o: user/lib/%.c $(wildcard user/lib/*.h) include/cgfence.h $(SKELS) | $(BUILD)/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/cgfence: user/cgfence.c $(LIB) | $(BUILD)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/cgfenced: user/cgfenced.c $(LIB) | $(BUILD)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -lpthread -o $@

$(BUILD)/cgfence-hook: user/cgfence-hook.c $(LIB) | $(BUILD)
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS) $(wildcard user/lib/*.h) include/cgfence.h
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -Iinclude -Iuser/lib $< $(FUZZ_LIB_SRCS) $(FUZZ_LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB) | $(BUILD)/tests
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/%: tests/tools/%.c | $(BUILD)/tests
	$(call msg,CCLD,$@)
	$(Q)$(CC) $(CFLAGS) $< -luring -o $@

# Build dependencies, installed with apt-get when missing (Debian 12).
BUILD_PKGS := clang llvm make gcc pkg-config libbpf-dev libelf-dev zlib1g-dev bpftool \
	      libc-ares-dev libjansson-dev libcmocka-dev liburing-dev libclang-rt-14-dev \
	      libldns-dev libseccomp-dev
TEST_PKGS := iproute2 dnsmasq-base util-linux libcap2-bin python3 jq valgrind nftables \
	     iptables ipset iperf3 gnuplot-nox gawk
DEMO_PKGS := iproute2 python3 curl

deps:
	$(Q)scripts/ensure-packages $(BUILD_PKGS)

test-deps: deps
	$(Q)scripts/ensure-packages $(TEST_PKGS)

demo-deps: deps
	$(Q)scripts/ensure-packages $(DEMO_PKGS)

demo: demo-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/demo.sh

# make check runs each fuzz target for FUZZ_SECONDS; make fuzz for longer.
FUZZ_SECONDS ?= 15

check: test-deps
	$(Q)$(MAKE) --no-print-directory all san
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run-all.sh

fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do tests/fuzz/run "$$f" 600 || exit 1; done

# cgfence against the alternatives (root, about 9 minutes); docs/benchmarks.md and
# docs/connect-rate.png are generated from the run, never written by hand.
bench: deps
	$(Q)scripts/ensure-packages iptables ipset nftables iperf3 gnuplot-nox gawk python3
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/compare

# cgfence's own costs in detail (root, about 10 minutes): the hooks against no-op
# programs, the daemon, the DNS proxy; bench/results.md is generated from the run.
bench-cgfence: deps
	$(Q)scripts/ensure-packages iperf3 dnsmasq-base jq python3 dnsperf
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run
	$(Q)bench/daemon.sh | tee -a bench/results.md
	$(Q)bench/dns.sh | tee -a bench/results.md

# The filtering DNS proxy alone (root, about 1.5 minutes): prints its section.
bench-dns: deps
	$(Q)scripts/ensure-packages dnsmasq-base python3 dnsperf
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/dns.sh

PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
# where podman and CRI-O look for OCI hook descriptions
OCI_HOOKS_DIR ?= /usr/share/containers/oci/hooks.d

install: $(BUILD)/cgfence $(BUILD)/cgfenced $(BUILD)/cgfence-hook
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSTEMD_UNIT_DIR) \
		$(DESTDIR)/etc/cgfence/policy.d $(DESTDIR)$(PREFIX)/share/doc/cgfence \
		$(DESTDIR)$(PREFIX)/libexec/cgfence $(DESTDIR)$(OCI_HOOKS_DIR)
	install -m 0755 $(BUILD)/cgfence $(BUILD)/cgfenced $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(BUILD)/cgfence-hook $(DESTDIR)$(PREFIX)/libexec/cgfence/
	for h in cgfence cgfence-poststop; do \
		sed 's|/usr/local|$(PREFIX)|g' etc/$$h.json > $(DESTDIR)$(OCI_HOOKS_DIR)/$$h.json && \
		chmod 0644 $(DESTDIR)$(OCI_HOOKS_DIR)/$$h.json || exit 1; \
	done
	sed 's|/usr/local|$(PREFIX)|g' etc/cgfenced.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/cgfenced.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/cgfenced.service
	[ -e $(DESTDIR)/etc/cgfence/cgfenced.conf ] || \
		install -m 0644 etc/cgfenced.conf $(DESTDIR)/etc/cgfence/cgfenced.conf
	install -m 0644 etc/devcontainer.policy $(DESTDIR)$(PREFIX)/share/doc/cgfence/
	[ -e $(DESTDIR)/etc/cgfence/policy.d/devcontainer.policy ] || \
		install -m 0644 etc/devcontainer.policy $(DESTDIR)/etc/cgfence/policy.d/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/cgfence/

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX_DIR)/vmlinux.h

clean:
	rm -rf $(BUILD)
