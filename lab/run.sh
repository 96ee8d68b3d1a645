#!/usr/bin/env bash
# lab/run.sh — run every lab test against every server implementation.
#
#   lab/run.sh                        all tests, SERVER_IMPL=miredo then shipworm
#   LAB_IMPLS=miredo lab/run.sh       one implementation
#   LAB_TESTS="qualify p2p" lab/run.sh
#
# Miredo's server proves the lab itself is honest, so any difference is
# Shipworm's; a missing Shipworm binary fails its tests.  Each test runs under `timeout` so a hung daemon cannot hang CI; a
# test killed that way is torn down from its LAB_DIR afterwards.  The last
# line is "N passed, N failed" (one count per test × implementation).
# ONLY_IMPL and MIN_TIMEOUT below name the tests that run against one
# server only, or need a longer timeout.
set -u -o pipefail
LAB_ROOT=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$LAB_ROOT")
cd "$REPO" || exit 1

if ((EUID != 0)); then
    echo "lab/run.sh: the lab needs root (network namespaces, iptables, raw sockets); run it as root" >&2
    exit 1
fi

read -ra TESTS <<<"${LAB_TESTS:-qualify p2p native_via_relay tshark_rsra client_qualify relay client_native client_p2p client_recovery client_forged client_symmetric client_dns}"
read -ra IMPLS <<<"${LAB_IMPLS:-miredo shipworm}"
TEST_TIMEOUT=${LAB_TEST_TIMEOUT:-90}

# Client tests in which the server under test plays no part of its own run
# against one server only.  The other client tests run against both: there
# the server forwards the echo test, the indirect bubbles and their origin
# indications, so each server's behaviour matters.
declare -A ONLY_IMPL=(
    # The server only answers refresh RSs, as in every other client test;
    # the test waits for one refresh (about 25 s), so once is enough.
    [client_recovery]=shipworm
    # The server is a hole in NAT1 to send through and an RA source that the
    # test's fake server replaces.
    [client_forged]=shipworm
    # Name resolution is the client's alone; the server only has to answer
    # RSs, and the test's second server is a Shipworm one anyway.
    [client_dns]=shipworm
)
# Tests that wait for a 30-s refresh need more than TEST_TIMEOUT.
declare -A MIN_TIMEOUT=([client_recovery]=120)
SHIPWORM_BIN=${SHIPWORM_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/shipworm}
export SHIPWORM_BIN

passed=0 failed=0
summary=()
t_all=${EPOCHREALTIME//[!0-9]/}

seconds_since() {
    local d=$((${EPOCHREALTIME//[!0-9]/} - $1))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# Tear down what a killed test left behind (its PID list and namespaces are
# in its LAB_DIR); a test that ended normally has already done it.
cleanup_after() {  # <lab-dir> <prefix>
    [[ -f $1/namespaces ]] || return 0
    # shellcheck disable=SC2016  # expanded by the inner bash
    LAB_DIR=$1 LAB_PREFIX=$2 LAB_KEEP=1 bash -c 'source "$0/lab.sh" && lab_down' "$LAB_ROOT"
}

for impl in "${IMPLS[@]}"; do
    if [[ $impl == shipworm && ! -x $SHIPWORM_BIN ]]; then
        for t in "${TESTS[@]}"; do
            echo "FAIL $t [shipworm]: no binary at $SHIPWORM_BIN (cargo build --release -p shipworm)"
            summary+=("FAIL $t [shipworm] (no binary)")
            failed=$((failed + 1))
        done
        continue
    fi
    for i in "${!TESTS[@]}"; do
        t=${TESTS[i]}
        only=${ONLY_IMPL[$t]:-$impl}
        if [[ $only != "$impl" ]]; then
            echo "=== $t [$impl]: not run, the server plays no part of its own (see run.sh); $only only"
            continue
        fi
        echo "=== $t [$impl]"
        dir=$(mktemp -d /tmp/shipworm-lab.XXXXXX)
        prefix=swr$$-$i${impl:0:1}
        limit=$TEST_TIMEOUT
        ((${MIN_TIMEOUT[$t]:-0} > limit)) && limit=${MIN_TIMEOUT[$t]}
        t0=${EPOCHREALTIME//[!0-9]/}
        LAB_DIR=$dir LAB_PREFIX=$prefix SERVER_IMPL=$impl \
            timeout -k 5 "$limit" bash "$LAB_ROOT/tests/$t.sh"
        rc=$?
        ((rc == 124 || rc == 137)) && echo "FAIL ${t}[$impl]: timed out after $limit s"
        cleanup_after "$dir" "$prefix"
        if ((rc == 0)); then
            passed=$((passed + 1))
            summary+=("PASS $t [$impl] $(seconds_since "$t0") s")
            [[ -d $dir ]] && rm -rf "$dir"
        else
            failed=$((failed + 1))
            summary+=("FAIL $t [$impl] $(seconds_since "$t0") s (rc $rc, logs in $dir)")
        fi
    done
done

echo "=== lab summary ($(seconds_since "$t_all") s)"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
