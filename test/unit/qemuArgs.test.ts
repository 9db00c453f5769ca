import { describe, expect, it } from "@effect/vitest"
import { kernelCommandLine, qemuArgs, type QemuSpec } from "../../src/vm/qemu/args.js"

const spec: QemuSpec = {
  name: "pyro-abc",
  accel: "tcg",
  vcpus: 2,
  memMib: 512,
  kernel: "/k/vmlinux",
  initrd: "/k/initrd.cpio",
  rootImage: "/env/rootfs.ext4",
  scratchImage: "/state/vms/abc/scratch.ext4",
  channelSocket: "/state/vms/abc/channel.sock",
  qmpSocket: "/state/vms/abc/qmp.sock",
  consoleLog: "/state/vms/abc/console.log",
  network: false,
  tscKhz: 2_600_000
}

const valueAfter = (args: ReadonlyArray<string>, flag: string) => args[args.indexOf(flag) + 1]

describe("qemuArgs", () => {
  it("builds a microvm with a read-only root, a scratch disk and the channel", () => {
    const args = qemuArgs(spec)
    expect(valueAfter(args, "-M")).toBe("microvm,acpi=on,pit=off,memory-backend=mem0")
    // An idle guest's periodic wake-ups stay off (docs/architecture.md, "What an idle VM costs the host").
    expect(valueAfter(args, "-append")?.split(" ")).toEqual(
      expect.arrayContaining(["tsc=reliable", "sysctl.vm.compaction_proactiveness=0", "psi=0", "nowatchdog"])
    )
    expect(args).toContain("memory-backend-ram,id=mem0,size=512M")
    expect(args).toContain("id=scratch,file=/state/vms/abc/scratch.ext4,format=raw,if=none,discard=unmap")
    // A workspace's snapshot layer is qcow2, told by its name, never probed.
    expect(qemuArgs({ ...spec, scratchImage: "/w/layer-2.qcow2" })).toContain("id=scratch,file=/w/layer-2.qcow2,format=qcow2,if=none,discard=unmap")
    expect(valueAfter(args, "-accel")).toBe("tcg,thread=multi,split-wx=on")
    expect(valueAfter(args, "-cpu")).toBe("qemu64,+arat")
    expect(valueAfter(args, "-smp")).toBe("2")
    expect(valueAfter(args, "-m")).toBe("512")
    expect(args).toContain("id=root,file=/env/rootfs.ext4,format=raw,if=none,readonly=on")
    expect(args).toContain("virtio-blk-device,drive=root,serial=pyro-root")
    expect(args).toContain("virtserialport,chardev=channel,name=org.pyro.channel.0")
    expect(args).toContain("-no-reboot")
    expect(args).not.toContain("-netdev")
    // The console is a named chardev, so that it can be swapped for a bounded ring after attach.
    expect(args).toContain("file,id=console,path=/state/vms/abc/console.log")
    expect(valueAfter(args, "-serial")).toBe("chardev:console")
  })

  it("gives each extra channel its own port and a sibling socket, and tells the agent how many", () => {
    const args = qemuArgs({ ...spec, channels: 3 })
    expect(args).toContain("virtio-serial-device,max_ports=4")
    expect(args).toContain("socket,id=channel,path=/state/vms/abc/channel.sock,server=on,wait=off")
    expect(args).toContain("socket,id=channel-1,path=/state/vms/abc/channel-1.sock,server=on,wait=off")
    expect(args).toContain("socket,id=channel-2,path=/state/vms/abc/channel-2.sock,server=on,wait=off")
    expect(args).toContain("virtserialport,chardev=channel-2,name=org.pyro.channel.2")
    expect(valueAfter(args, "-append")?.split(" ")).toContain("pyro.channels=3")
    // One channel, the default: the command line of every VM so far.
    expect(qemuArgs(spec)).toContain("virtio-serial-device,max_ports=2")
    expect(qemuArgs(spec)).toEqual(qemuArgs({ ...spec, channels: 1 }))
    expect(valueAfter(qemuArgs(spec), "-append")).not.toContain("pyro.channels")
  })

  it("uses KVM with the host CPU when told to", () => {
    const args = qemuArgs({ ...spec, accel: "kvm" })
    expect(valueAfter(args, "-accel")).toBe("kvm")
    expect(valueAfter(args, "-cpu")).toBe("host")
  })

  it("adds user-mode networking only when asked", () => {
    // IPv4 only: the egress jail gives the guest no IPv6 way out.
    expect(qemuArgs({ ...spec, network: true })).toContain("user,id=net0,ipv6=off")
    expect(qemuArgs(spec)).not.toContain("-netdev")
  })

  it("escapes commas in paths QEMU parses as options", () => {
    const args = qemuArgs({ ...spec, rootImage: "/odd,dir/rootfs.ext4" })
    expect(args).toContain("id=root,file=/odd,,dir/rootfs.ext4,format=raw,if=none,readonly=on")
  })

  it("passes the host TSC frequency so TCG boots never hang calibrating it", () => {
    expect(kernelCommandLine({ tscKhz: 2_600_000 })).toContain("tsc_early_khz=2600000")
    expect(kernelCommandLine({ tscKhz: undefined })).not.toContain("tsc_early_khz")
    expect(kernelCommandLine({ tscKhz: undefined })).toContain("panic=-1")
  })
})
