/**
 * The QEMU command line for one VM, as a pure function of its spec, so it can
 * be checked without starting anything. Machine: `microvm` with ACPI, which
 * Debian's cloud kernel uses to find the virtio-mmio devices (its
 * VIRTIO_MMIO_CMDLINE_DEVICES is off).
 */
import { PROXY_GUEST_ADDRESS, PROXY_GUEST_PORT } from "../network/policy.js"
import { portName, ROOT_SERIAL } from "../protocol/constants.js"
import { channelSocketPath } from "../vmDir.js"
import { CONSOLE_CHARDEV } from "./console.js"

export const SCRATCH_SERIAL = "pyro-scratch"
/** The scratch drive's QEMU id, which QMP's block commands name (a workspace snapshot, a fork). */
export const SCRATCH_DRIVE = "scratch"

/**
 * A scratch disk is raw ext4, or (a workspace with snapshots) a qcow2 layer
 * over older ones (src/workspace/disk/layers.ts): its name says which, so the
 * format is never probed from bytes a guest wrote.
 */
export const scratchFormat = (path: string): "qcow2" | "raw" => (path.endsWith(".qcow2") ? "qcow2" : "raw")
/** The agent configures eth0 only when the kernel command line holds this (guest/agent/agent.h). */
export const NETWORK_KERNEL_ARG = "pyro.net=1"
/** Instead of NETWORK_KERNEL_ARG with an allowlist: eth0 with no route or resolver, only the proxy (agent.h). */
export const NETWORK_PROXY_KERNEL_ARG = "pyro.net=proxy"
/** With more than one channel, the agent waits for each port this announces (PYRO_CMDLINE_CHANNELS, agent.h). */
export const CHANNELS_KERNEL_ARG = "pyro.channels="

export interface QemuSpec {
  readonly name: string
  readonly accel: "kvm" | "tcg"
  readonly vcpus: number
  readonly memMib: number
  readonly kernel: string
  readonly initrd: string
  readonly rootImage: string
  readonly scratchImage: string
  /** Channel 0's socket; channel N's is `channelSocketPath(channelSocket, N)`. */
  readonly channelSocket: string
  /** Host channels: virtio-serial ports the agent serves independently. Default 1. */
  readonly channels?: number
  readonly qmpSocket: string
  readonly consoleLog: string
  readonly network: boolean
  /**
   * With network: libslirp routes nothing and answers no DNS (`restrict=on`);
   * the guest's one way out is a connection to the proxy address, for each of
   * which libslirp runs this command with the connection as its stdin and
   * stdout (`guestfwd=...-cmd:`; split by g_shell_parse_argv, so quoted).
   */
  readonly allowProxy?: string
  /** Host TSC frequency; see kernelCommandLine. */
  readonly tscKhz: number | undefined
  /**
   * Guest RAM in a file (templates): `share: true` while a template is made,
   * so the RAM lands in the file; `share: false` for clones, which map it
   * privately (copy-on-write: nothing copied, the file never written).
   */
  readonly memoryFile?: { readonly path: string; readonly share: boolean }
  /** Start paused, waiting for device state (`-incoming defer`); the kernel is already in RAM. */
  readonly restore?: boolean
  /** Appended to the kernel command line (bench/boot's `pyro.poweroff_when_ready`). */
  readonly extraKernelArgs?: ReadonlyArray<string>
}

/** QEMU option values treat "," as a separator; a literal comma is doubled. */
const optionPath = (path: string) => path.replaceAll(",", ",,")

/** The netdev options that leave the guest only the allowlist proxy (PROXY_GUEST_ADDRESS, src/vm/network/policy.ts). */
const proxyNetdevOptions = (command: string | undefined) =>
  command === undefined ? "" : `,restrict=on,guestfwd=tcp:${PROXY_GUEST_ADDRESS}:${PROXY_GUEST_PORT}-cmd:${optionPath(command)}`

/**
 * `tsc_early_khz`: microvm has no HPET (and, `pit=off`, no PIT) to calibrate the TSC against,
 * and under TCG about one boot in seven then spins forever in
 * setup_boot_APIC_clock; telling the kernel the frequency avoids it.
 * `panic=-1 reboot=t` with `-no-reboot`: a guest that panics makes QEMU exit,
 * which the host sees at once.
 * `cryptomgr.notests`: the crypto self-tests take ~0.35 s of each boot under
 * TCG; they check the kernel's own implementations, which a fixed, distro-built
 * kernel does not need re-proven on every VM start.
 * `rcupdate.rcu_expedited`: boot waits on many RCU grace periods; expedited
 * ones end sooner under TCG (~90 ms per boot, measured).
 * `tsc=reliable`: no clocksource watchdog on the TSC. Under TCG a guest
 * restored onto a loaded host sees its TSC drift against jiffies (66 ms in
 * 0.5 s, measured) and falls back to a jiffies clocksource, which cannot stop
 * its tick when idle: 252 timer interrupts a second instead of ~9, and 4-5 %
 * of a core per idle VM instead of ~0.6 %. The more VMs, the more load, the
 * more guests fall back: 17 of 20 and 33 of 40 restored VMs did (docs/architecture.md).
 * `sysctl.vm.compaction_proactiveness=0 psi=0 nowatchdog`: an idle guest's
 * own periodic wake-ups, each a QEMU main-loop and vCPU wake-up on the host
 * (guest ftrace, docs/architecture.md): kcompactd checks fragmentation every
 * 500 ms unless proactive compaction is off (on-demand compaction stays),
 * pressure stall averages are recomputed every 2 s while anything wakes, and
 * the soft-lockup detector's timer fires every 4 s. Without them an idle
 * guest takes ~0.7 timer interrupts a second instead of ~6.7.
 * `pyro.net=1` (only with a NIC): tells the agent to load virtio_net and
 * configure eth0 for QEMU user networking. The flag and the device come from
 * the same `spec.network`, so they always agree; `pyro.net=proxy` instead
 * when the NIC leads only to the allowlist proxy (`spec.allowProxy`).
 * `pyro.channels=N` (only with N > 1 channels): the agent waits for that many
 * ports, which appear one by one as the device probes.
 */

export const kernelCommandLine = (
  spec: Pick<QemuSpec, "tscKhz" | "extraKernelArgs" | "channels" | "allowProxy"> & { readonly network?: boolean }
): string =>
  [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "reboot=t",
    "cryptomgr.notests",
    "rcupdate.rcu_expedited=1",
    ...(spec.tscKhz ? [`tsc_early_khz=${spec.tscKhz}`] : []),
    "tsc=reliable",
    "sysctl.vm.compaction_proactiveness=0",
    "psi=0",
    "nowatchdog",
    ...(spec.network ? [spec.allowProxy === undefined ? NETWORK_KERNEL_ARG : NETWORK_PROXY_KERNEL_ARG] : []),
    ...((spec.channels ?? 1) > 1 ? [`${CHANNELS_KERNEL_ARG}${spec.channels}`] : []),
    ...(spec.extraKernelArgs ?? [])
  ].join(" ")

/** One virtio-serial port per channel (port 0 of the device is the console's, unused), each on its own socket. */
const channelArgs = (spec: Pick<QemuSpec, "channelSocket" | "channels">): ReadonlyArray<string> => {
  const count = spec.channels ?? 1
  return [
    "-device",
    `virtio-serial-device,max_ports=${count + 1}`,
    ...Array.from({ length: count }, (_, n) => {
      const id = n === 0 ? "channel" : `channel-${n}`
      return [
        "-chardev",
        `socket,id=${id},path=${optionPath(channelSocketPath(spec.channelSocket, n))},server=on,wait=off`,
        "-device",
        `virtserialport,chardev=${id},name=${portName(n)}`
      ]
    }).flat()
  ]
}

export const qemuArgs = (spec: QemuSpec): ReadonlyArray<string> => [
  "-name",
  spec.name,
  ...(spec.accel === "kvm"
    ? ["-accel", "kvm", "-cpu", "host"]
    // qemu64 plus an always-running APIC timer: idle guests cost ~0.7 % of a
    // core instead of ~4 % (measured; -cpu max makes guest->host copies 23x slower).
    // split-wx: the translated code lives in a memfd (shmem, 4 KiB pages) instead
    // of anonymous memory QEMU asks to back with 2 MiB huge pages, which rounded an
    // idle VM's ~3 MiB of code up to 6 MiB of host memory (docs/architecture.md).
    : ["-accel", "tcg,thread=multi,split-wx=on", "-cpu", "qemu64,+arat"]),
  "-smp",
  String(spec.vcpus),
  "-m",
  String(spec.memMib),
  // Always a named backend, so that RAM migrates between any two VMs by one name
  // (templates save and restore it; a fork restores a running VM's into another).
  "-object",
  spec.memoryFile
    ? `memory-backend-file,id=mem0,size=${spec.memMib}M,mem-path=${optionPath(spec.memoryFile.path)},share=${
      spec.memoryFile.share ? "on" : "off"
    }`
    : `memory-backend-ram,id=mem0,size=${spec.memMib}M`,
  "-M",
  // pit=off: under TCG microvm otherwise emulates an 8254 whose timer wakes QEMU's
  // main loop every 27 ms in every idle VM (perf trace; the guest never uses it).
  "microvm,acpi=on,pit=off,memory-backend=mem0",
  "-nodefaults",
  "-no-user-config",
  "-display",
  "none",
  "-no-reboot",
  // A file until the VM is attached; then a ring in QEMU's memory (console.ts).
  "-chardev",
  `file,id=${CONSOLE_CHARDEV},path=${optionPath(spec.consoleLog)}`,
  "-serial",
  `chardev:${CONSOLE_CHARDEV}`,
  ...(spec.restore ? ["-incoming", "defer"] : ["-kernel", spec.kernel, "-initrd", spec.initrd, "-append", kernelCommandLine(spec)]),
  "-drive",
  `id=root,file=${optionPath(spec.rootImage)},format=raw,if=none,readonly=on`,
  "-device",
  `virtio-blk-device,drive=root,serial=${ROOT_SERIAL}`,
  "-drive",
  `id=${SCRATCH_DRIVE},file=${optionPath(spec.scratchImage)},format=${scratchFormat(spec.scratchImage)},if=none,discard=unmap`,
  "-device",
  `virtio-blk-device,drive=scratch,serial=${SCRATCH_SERIAL}`,
  ...channelArgs(spec),
  "-qmp",
  `unix:${optionPath(spec.qmpSocket)},server=on,wait=off`,
  ...(spec.network
    // IPv4 only: the jail (src/vm/network/egress.ts) gives the guest no IPv6 way out anyway.
    ? ["-netdev", `user,id=net0,ipv6=off${proxyNetdevOptions(spec.allowProxy)}`, "-device", "virtio-net-device,netdev=net0"]
    : [])
]
