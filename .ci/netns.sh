# shellcheck shell=bash
# Sourced by .ci/run before the go test steps: a private network for the endpoint-agent test
# (internal/cli/testdata/script/netns.txtar, docs/agents.md "A private network, for real").
#
# It creates the project's own network namespace and a veth pair (iproute2 `ip netns`), nothing
# else: the host side of the pair gets 10.231.N.1/30, the namespace side 10.231.N.2/30 and the
# namespace its own loopback. The test then runs the target HTTP service on the namespace's
# loopback (which the host, and so zof serve, cannot reach), zof serve on the host side address
# and zof agent inside the namespace (it reaches the server over the veth, outbound only).
#
# It exports ZOF_TEST_NETNS (the namespace) and ZOF_TEST_NETNS_HOST (the host side address), and
# always ZOF_REQUIRE_NETNS=1: when the namespace could not be made (not root, no iproute2, no
# namespaces in this kernel or container) the test FAILS, saying so, instead of skipping. The
# namespace (and with it the veth pair) is deleted when the sourcing shell exits.
export ZOF_REQUIRE_NETNS=1

zof_netns_up() {
  local ns host peer octet hostip nsip
  if [ "$(id -u)" != 0 ]; then
    echo "error: the private-network test needs root to create a network namespace (id -u is $(id -u)); it will fail" >&2
    return 0
  fi
  if ! command -v ip >/dev/null 2>&1; then
    echo "== installing iproute2 (ip netns) for the private-network test"
    if command -v apt-get >/dev/null 2>&1; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2) >/dev/null 2>&1 || true
    fi
    if ! command -v ip >/dev/null 2>&1; then
      echo "error: iproute2 could not be installed; the private-network test will fail" >&2
      return 0
    fi
  fi
  # Names of our own, from this shell's pid (interface names are at most 15 bytes).
  ns="zof-agent-$$"
  host="zofh$$"
  peer="zofn$$"
  octet=$(($$ % 250 + 1))
  hostip="10.231.$octet.1"
  nsip="10.231.$octet.2"
  if ! ip netns add "$ns" 2>"/tmp/zof-netns-$$.err"; then
    echo "error: ip netns add $ns failed ($(cat "/tmp/zof-netns-$$.err")); the private-network test will fail" >&2
    rm -f "/tmp/zof-netns-$$.err"
    return 0
  fi
  rm -f "/tmp/zof-netns-$$.err"
  ZOF_NETNS_NAME=$ns
  if ! { ip link add "$host" type veth peer name "$peer" &&
    ip link set "$peer" netns "$ns" &&
    ip addr add "$hostip/30" dev "$host" &&
    ip link set "$host" up &&
    ip netns exec "$ns" ip addr add "$nsip/30" dev "$peer" &&
    ip netns exec "$ns" ip link set "$peer" up &&
    ip netns exec "$ns" ip link set lo up; }; then
    echo "error: setting up the veth pair $host/$peer for $ns failed; the private-network test will fail" >&2
    return 0
  fi
  export ZOF_TEST_NETNS="$ns" ZOF_TEST_NETNS_HOST="$hostip"
  echo "network namespace $ns: host side $hostip ($host), namespace side $nsip ($peer)"
}

zof_netns_down() {
  if [ -n "${ZOF_NETNS_NAME:-}" ]; then
    # Deleting the namespace deletes the veth pair with it.
    ip netns del "$ZOF_NETNS_NAME" 2>/dev/null || true
  fi
}

# zof_netns_trap_cmd prints the command of a `trap -p` line's arguments.
zof_netns_trap_cmd() { printf '%s' "${2:-}"; }

echo "== a private network for the endpoint-agent test (network namespace)"
# Keep whatever EXIT trap the caller set (the build dir, PostgreSQL) and delete the namespace first.
zof_netns_prev_trap=$(trap -p EXIT)
zof_netns_prev_trap=${zof_netns_prev_trap#trap }
zof_netns_prev_trap=$(eval "zof_netns_trap_cmd $zof_netns_prev_trap")
# shellcheck disable=SC2064 # expand the previous command now
trap "zof_netns_down; $zof_netns_prev_trap" EXIT
zof_netns_up
