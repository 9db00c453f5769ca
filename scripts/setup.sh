#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working `pyro`: system packages
# (apt), npm dependencies, the build, the guest kernel and the default
# environment, then a real command in a real VM. Safe to rerun: everything it
# downloads or builds is cached under ${XDG_CACHE_HOME:-~/.cache}/pyro.
set -euo pipefail
cd "$(dirname "$0")/.."

# What each package is for is in README.md ("System tools") and src/host/systemTools.ts,
# which lists every command pyro, its tests and its benchmarks run; a test checks that
# each of them comes from a package installed here.
PACKAGES=(
  qemu-system-x86 # the VMM
  qemu-utils      # qemu-img: a workspace's disk layers (snapshots, reset, fork) and their raw view
  e2fsprogs       # mkfs.ext4 -d: root images without mounting
  coreutils       # cp --sparse: template scratch disks
  perl-base       # perl: QEMU started with transparent huge pages off (prctl)
  util-linux      # setpriv: the VMM dies with its parent; unshare: a networked VM's namespace; flock: proxy slots
  bsdutils        # tests: script, a pseudo-terminal for shell attach
  passt iproute2  # pasta and ip rules: a networked VM reaches public addresses, never the host
  mount dash      # netjail.sh's bind mount and shell
  musl-tools      # musl-gcc: the static guest agent
  apt dpkg        # apt-get download + dpkg-deb -x: the kernel and busybox
  busybox-static  # the tiny environment
  mmdebstrap      # the debian:12 environments
  ca-certificates
  gcc libc6-dev   # tests: the agent's protocol code under sanitizers
  cpio            # tests: the initramfs writer checked against cpio
  git             # project sources: a checkout's tracked files, a --repo-url clone
  tar openssl     # tests: import streams, the test registry's certificate
  grep            # tests: no secret's value on the host's disk but its one file
  docker-registry # tests: a real OCI registry
  runsc           # bench: gVisor, the baseline bench/start compares against
)

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# apt-get download (the guest kernel) needs package lists; refresh them daily.
lists_fresh=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)
if [ ${#missing[@]} -gt 0 ] || [ -z "$lists_fresh" ]; then
  echo "==> apt-get update"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "==> npm run build"
npm run --silent build

echo "==> pyro doctor"
node bin/pyro.js doctor --no-boot || true
echo "==> pyro run ${PYRO_SETUP_ENVIRONMENT:-debian:12} -- git --version   (the first run fetches the kernel and builds the environment)"
node bin/pyro.js run "${PYRO_SETUP_ENVIRONMENT:-debian:12}" -- git --version
echo "==> ready; try: node bin/pyro.js run debian:12 -- python3 -c 'print(42)'"
