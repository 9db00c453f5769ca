#!/bin/sh
# netjail.sh DIR QEMU [ARGS...]: run QEMU (with "-netdev user", libslirp) in a
# fresh user + network + mount namespace N whose only way out is pasta
# (Debian's passt), with policy rules in N that refuse the host and private
# networks. src/vm/network/egress.ts writes DIR first and explains the design:
#
#   DIR/rules4, DIR/rules6  `ip -batch` rules for N (refused ranges, the host's
#                           own addresses, the one DNS exception)
#   DIR/resolv.conf         libslirp's upstream resolver inside N: pasta's forwarder
#   DIR/dns                 that forwarder's address
#   DIR/gateway             the host's IPv4 default gateway, or empty
#
# and reads back DIR/net-ready (N has its way out) or DIR/net-failed (why not).
#
# Every step execs, so the pid that runs this script is QEMU's in the end
# (sh -> unshare -> sh -> setpriv -> QEMU). pasta runs under a helper that is
# a child of that pid, in its process group, both with a parent-death signal:
# neither outlives QEMU.
#
# Runs: sh unshare setpriv nsenter ip mount mkfifo id cat sleep rm pasta
set -eu

case "$1" in
--inner)
	# Inside N, as root of N's user namespace, before QEMU exists.
	d=$2
	shift 2
	# Policy rules are consulted before every routing table, so they beat the
	# routes pasta copies from the host (a host at 10.0.0.5/24 would otherwise
	# give N a 10.0.0.0/24 route). "unreachable": a refused connect fails at once.
	ip -4 -batch "$d/rules4"
	# A host booted without IPv6 has nothing to refuse there (pasta is -4, slirp ipv6=off).
	if [ -e /proc/net/if_inet6 ]; then ip -6 -batch "$d/rules6"; fi
	mount --bind "$d/resolv.conf" /etc/resolv.conf
	echo ready >"$d/ready"
	# QEMU is uid 0 in N with one capability, and not CAP_NET_ADMIN: it cannot change
	# N's rules, routes or mounts. CAP_DAC_OVERRIDE (over files whose owner is mapped
	# into N: the user's own) because QEMU 7.2 opens a template's read-only RAM file
	# for writing even to map it privately, never writing it.
	exec setpriv --bounding-set -all,+dac_override --inh-caps -all --no-new-privs -- "$@"
	;;
--pasta)
	# On the host side: a child of QEMU-to-be ($3), started before it entered N.
	d=$2
	pid=$3
	fail() {
		{
			echo "$1"
			cat "$d/pasta.log" 2>/dev/null || :
		} >"$d/net-failed"
		exit 1
	}
	read _ <"$d/ready" || exit 1
	# As root, pasta would drop to nobody and could not join a root-owned user namespace.
	runas=
	[ "$(id -u)" = 0 ] && runas="--runas 0"
	# No port forwarding in either direction (the defaults forward automatically: a
	# hole to the host's loopback), no gateway mapping, IPv4 only, DNS only through
	# the forwarder address N's resolv.conf names.
	# shellcheck disable=SC2086
	setpriv --pdeathsig KILL -- pasta -f -q -4 --config-net -I eth0 \
		-t none -u none -T none -U none --no-map-gw \
		--dns-forward "$(cat "$d/dns")" \
		-l "$d/pasta.log" -P "$d/pasta.pid" $runas "$pid" &
	pasta=$!
	i=0
	until [ -s "$d/pasta.pid" ]; do # pasta -f writes it once N is configured
		i=$((i + 1))
		kill -0 "$pasta" 2>/dev/null || fail "pasta did not start"
		[ $i -le 2000 ] || fail "pasta did not start within 10 s"
		sleep 0.005
	done
	# pasta's default route names the host's gateway; when that lies in a refused
	# range the kernel refuses the route (it checks gateways against the rules):
	# "onlink" skips the check. As a destination the gateway stays refused.
	gw=$(cat "$d/gateway")
	if [ -n "$gw" ]; then
		route="default via $gw dev eth0 onlink"
	else
		route="default dev eth0"
	fi
	# shellcheck disable=SC2086
	nsenter --target "$pid" --user --net --preserve-credentials ip -4 route replace $route ||
		fail "could not set the namespace's default route"
	: >"$d/net-ready"
	wait "$pasta"
	exit 0
	;;
esac

d=$1
shift
rm -f "$d/ready" "$d/pasta.pid" "$d/net-ready" "$d/net-failed"
mkfifo -m 600 "$d/ready"
setpriv --pdeathsig KILL -- sh "$0" --pasta "$d" "$$" &
exec unshare --user --map-root-user --net --mount -- sh "$0" --inner "$d" "$@"
