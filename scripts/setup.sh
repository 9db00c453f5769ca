#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working `pyro`: system packages
# (apt), npm dependencies, the build, the guest kernel and the default
# environment, then a real command in a real VM. Safe to rerun: everything it
# downloads or builds is cached under ${XDG_CACHE_HOME:-~/.cache}/pyro.
set -euo pipefail
cd "$(dirname "$0")/.."

# What each package is for is in README.md ("System tools").
PACKAGES=(
  qemu-system-x86 # the VMM
  e2fsprogs       # mkfs.ext4 -d: root images without mounting
  musl-tools      # musl-gcc: the static guest agent
  gcc libc6-dev   # the agent's protocol tests (with sanitizers)
  busybox-static  # the tiny environment
  mmdebstrap      # the debian:12 environments
  util-linux      # setpriv: the VMM dies with its parent
  ca-certificates
  docker-registry # a real OCI registry for the registry tests
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
