/**
 * Every system command pyro runs (src/), and every one its tests, benchmarks
 * and scripts run, with the Debian package that provides it. scripts/setup.sh
 * installs each package listed here; test/unit/systemTools.test.ts checks the
 * table against the code (a command run anywhere must be listed), against
 * setup.sh (every package installed), and against dpkg (each command really
 * belongs to its package). `doctor` reports the runtime ones.
 */

export type ToolUse = "runtime" | "build" | "test" | "bench"

export interface SystemTool {
  /** The Debian package that provides the command. */
  readonly package: string
  /** Who runs it: pyro itself (runtime), environment and agent builds, the tests, the benchmarks. */
  readonly use: ToolUse
  readonly purpose: string
  /** How to get it, when installing the package is not the whole answer. */
  readonly fix?: string
}

export const SYSTEM_TOOLS = {
  "qemu-system-x86_64": { package: "qemu-system-x86", use: "runtime", purpose: "the VMM (microvm machine, virtio-mmio devices)" },
  perl: { package: "perl-base", use: "runtime", purpose: "starts QEMU with transparent huge pages off (prctl) when its guest RAM is a file: 2 MB less per idle VM" },
  setpriv: { package: "util-linux", use: "runtime", purpose: "kills a VM when pyro dies (parent-death signal)" },
  "mkfs.ext4": { package: "e2fsprogs", use: "runtime", purpose: "builds root images and scratch disks without mounting" },
  debugfs: { package: "e2fsprogs", use: "runtime", purpose: "reads a stopped workspace's disk offline, read-only (workspace_disk_*)" },
  e2fsck: { package: "e2fsprogs", use: "runtime", purpose: "replays the journal of a workspace disk left by a VM that was killed, before it is read" },
  "qemu-img": { package: "qemu-utils", use: "runtime", purpose: "a workspace's disk layers: qcow2 snapshots, resets and forks that copy nothing, and the raw view disk tools read" },
  env: { package: "coreutils", use: "runtime", purpose: "bin/pyro.js's first line (env -S): starts Node without NODE_EXTRA_CA_CERTS, handing it on to the registry client" },
  cp: { package: "coreutils", use: "runtime", purpose: "copies a template's sparse scratch disk to each VM, and a stopped workspace's disk out (GNU --sparse)" },
  pasta: { package: "passt", use: "runtime", purpose: "a networked VM's only way out of its namespace (src/vm/network)" },
  unshare: { package: "util-linux", use: "runtime", purpose: "the user, network and mount namespace of a networked VM" },
  nsenter: { package: "util-linux", use: "runtime", purpose: "netjail.sh: a networked VM's default route, set from outside" },
  ip: { package: "iproute2", use: "runtime", purpose: "the rules that keep a networked VM off the host and private networks" },
  mount: { package: "mount", use: "runtime", purpose: "a networked VM's resolver inside its namespace" },
  umount: { package: "mount", use: "test", purpose: "undoes the mount a test puts inside a build's leftover tree (removeTree)" },
  sh: { package: "dash", use: "runtime", purpose: "runs src/vm/network/netjail.sh and allowProxy.sh" },
  flock: { package: "util-linux", use: "runtime", purpose: "allowProxy.sh: at most 16 allowlist proxies at once per VM" },
  mkfifo: { package: "coreutils", use: "runtime", purpose: "netjail.sh: starts pasta once the namespace's rules are in force" },
  id: { package: "coreutils", use: "runtime", purpose: "netjail.sh: whether pasta runs as root" },
  cat: { package: "coreutils", use: "runtime", purpose: "netjail.sh: reads the files egress.ts wrote" },
  sleep: { package: "coreutils", use: "runtime", purpose: "netjail.sh: waits for pasta" },
  rm: { package: "coreutils", use: "runtime", purpose: "netjail.sh: clears old markers" },
  git: {
    package: "git",
    use: "runtime",
    purpose: "project sources: finds the checkout, lists its tracked files, clones a --repo-url (src/workspace/project); tests: real repositories"
  },
  "musl-gcc": { package: "musl-tools", use: "build", purpose: "compiles the static guest agent" },
  "apt-get": {
    package: "apt",
    use: "build",
    purpose: "downloads Debian's kernel and busybox",
    fix: "use a Debian host, or set PYRO_KERNEL and PYRO_KERNEL_MODULES"
  },
  "apt-cache": { package: "apt", use: "build", purpose: "resolves the kernel's metapackage" },
  "dpkg-deb": { package: "dpkg", use: "build", purpose: "unpacks Debian packages" },
  "dpkg-query": { package: "dpkg", use: "build", purpose: "lists an environment's packages" },
  mmdebstrap: { package: "mmdebstrap", use: "build", purpose: "builds the Debian environments" },
  gcc: { package: "gcc", use: "test", purpose: "compiles the agent's C natively under ASan/UBSan (wire, ring, untar, fs)" },
  cpio: { package: "cpio", use: "test", purpose: "checks the initramfs writer against a real cpio" },
  tar: { package: "tar", use: "test", purpose: "GNU tar: the import stream must extract with it, and it must read the agent's export stream; reads a sparse disk image's data only" },
  busybox: { package: "busybox-static", use: "test", purpose: "BusyBox tar: the import stream must extract with it too" },
  grep: { package: "grep", use: "test", purpose: "looks for a secret's value in every file of the state directory (disk images through tar -S)" },

  openssl: { package: "openssl", use: "test", purpose: "a TLS certificate for the test registry" },
  "docker-registry": { package: "docker-registry", use: "test", purpose: "a real OCI registry (CNCF distribution) on loopback" },
  chmod: { package: "coreutils", use: "test", purpose: "test fixtures" },
  touch: { package: "coreutils", use: "test", purpose: "test fixtures: a negative mtime, which Node's utimes takes as now" },
  sha256sum: { package: "coreutils", use: "test", purpose: "checks a seeded file byte for byte" },
  script: { package: "bsdutils", use: "test", purpose: "runs `pyro workspace shell attach` on a pseudo-terminal" },
  stty: { package: "coreutils", use: "test", purpose: "sizes and resizes that pseudo-terminal" },
  runsc: { package: "runsc", use: "bench", purpose: "gVisor, the baseline bench/start compares the CLI against" }
} as const satisfies Record<string, SystemTool>

export type ToolName = keyof typeof SYSTEM_TOOLS

/** A command's name, checked against the table at compile time: `tool("cpio")`. */
export const tool = <N extends ToolName>(name: N): N => name

/** How to install a missing tool, for error messages and doctor. */
export const installHint = (name: ToolName): string => {
  const spec: SystemTool = SYSTEM_TOOLS[name]
  return spec.fix ?? `sudo apt-get install ${spec.package}`
}
