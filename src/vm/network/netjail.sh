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
# (sh -> unshare -> sh -> setpriv -> QEMU). pasta runs as a child of that pid,
# in its process group, with a parent-death signal: it never outlives QEMU.
#
# Runs: sh unshare setpriv ip mount mkfifo id cat sleep rm pasta
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
	ip -6 -batch "$d/rules6"
	mount --bind "$d/resolv.conf" /etc/resolv.conf
	echo ready >"$d/ready"
	# N's way out is finished by a short-lived child of QEMU-to-be, dying with it.
	setpriv --pdeathsig KILL -- sh "$0" --net-up "$d" "$$" &
	# QEMU is uid 0 in N with one capability, and not CAP_NET_ADMIN: it cannot change
	# N's rules, routes or mounts. CAP_DAC_OVERRIDE (over files whose owner is mapped
	# into N: the user's own) because QEMU 7.2 opens a template's read-only RAM file
	# for writing even to map it privately, never writing it.
	exec setpriv --bounding-set -all,+dac_override --inh-caps -all --no-new-privs -- "$@"
	;;
--net-up)
	d=$2
	# Our parent is gone already: nothing to finish.
	[ "$PPID" = "$3" ] || exit 0
	i=0
	until [ -s "$d/pasta.pid" ]; do # pasta -f writes it once N is configured
		i=$((i + 1))
		if [ -e "$d/pasta.failed" ] || [ $i -gt 2000 ]; then
			{
				echo "pasta did not start"
				cat "$d/pasta.log" 2>/dev/null || :
			} >"$d/net-failed"
			exit 1
		fi
		sleep 0.005
	done
	# pasta's default route names the host's gateway; when that lies in a refused
	# range the kernel refuses the route (it checks gateways against the rules):
	# "onlink" skips the check. As a destination the gateway stays refused.
	gw=$(cat "$d/gateway")
	if [ -n "$gw" ]; then
		ip -4 route replace default via "$gw" dev eth0 onlink
	else
		ip -4 route replace default dev eth0
	fi
	: >"$d/net-ready"
	exit 0
	;;
esac

d=$1
shift
rm -f "$d/ready" "$d/pasta.pid" "$d/pasta.failed" "$d/net-ready" "$d/net-failed"
mkfifo -m 600 "$d/ready"
# As root, pasta would drop to nobody and could not join a root-owned user namespace.
runas=
[ "$(id -u)" = 0 ] && runas="--runas 0"
# pasta, attached to N from the host side once N's rules are in force. No port
# forwarding in either direction (the defaults forward automatically: a hole to
# the host's loopback), no gateway mapping, IPv4 only, DNS only through the
# forwarder address N's resolv.conf names.
setpriv --pdeathsig KILL -- sh -c '
	read _ <"$1/ready" || exit 1
	setpriv --pdeathsig KILL -- pasta -f -q -4 --config-net -I eth0 \
		-t none -u none -T none -U none --no-map-gw \
		--dns-forward "$(cat "$1/dns")" \
		-l "$1/pasta.log" -P "$1/pasta.pid" $2 "$3" || echo $? >"$1/pasta.failed"
' netjail-pasta "$d" "$runas" "$$" &
exec unshare --user --map-root-user --net --mount -- sh "$0" --inner "$d" "$@"
