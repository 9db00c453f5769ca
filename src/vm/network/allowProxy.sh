#!/bin/sh
# allowProxy.sh NODE PROXY DIR: what libslirp runs for each guest connection
# to the allowlist proxy (QEMU's guestfwd=...-cmd:, src/vm/qemu/args.ts), with
# the connection as stdin, stdout and stderr, inside the VM's namespace.
#
# A guest can open connections far faster than Node starts, so at most SLOTS
# proxies (src/vm/network/allowProxy.ts) run per VM at once: each holds one
# of DIR/slot-N locked (flock) while it runs; a connection finding every slot
# taken is answered 503 at once by this shell alone.
#
# Runs: sh flock
d=$3
exec 2>/dev/null # stderr is the guest's connection too
SLOTS=16
i=0
while [ "$i" -lt "$SLOTS" ]; do
	# 75: the slot is taken (-E); anything else is the proxy's own exit.
	flock -n -E 75 "$d/slot-$i" "$1" --no-warnings --max-old-space-size=64 "$2" "$d"
	rc=$?
	[ "$rc" -ne 75 ] && exit "$rc"
	i=$((i + 1))
done
body="pyro: too many connections through this VM's proxy at once ($SLOTS)"
printf 'HTTP/1.1 503 %s\r\ncontent-type: text/plain\r\ncontent-length: %s\r\nconnection: close\r\n\r\n%s\n' \
	"$body" "$((${#body} + 1))" "$body"
