/**
 * Which accelerator QEMU should use. KVM only when it can run a stock guest
 * kernel: the CPU must offer hardware virtualisation (vmx or svm). Some hosts
 * expose /dev/kvm through PVM (kvm_pvm), which runs only PVM-built guest
 * kernels and hangs ours, so /dev/kvm alone proves nothing. Deciding from
 * these facts never risks a hung boot.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import type { AccelPreference } from "../services/PyroConfig.js"

export interface KvmFacts {
  readonly deviceExists: boolean
  readonly readable: boolean
  readonly writable: boolean
  /** vmx or svm in /proc/cpuinfo. */
  readonly hardwareVirtualisation: boolean
  /** /sys/module/kvm_pvm exists. */
  readonly pvm: boolean
}

export interface AccelDecision {
  readonly accel: "kvm" | "tcg"
  readonly kvmUsable: boolean
  readonly reason: string
}

export const kvmUsable = (f: KvmFacts): { readonly usable: boolean; readonly why: string } => {
  if (!f.deviceExists) return { usable: false, why: "/dev/kvm does not exist" }
  if (!f.readable || !f.writable) return { usable: false, why: "/dev/kvm is not readable and writable by this user" }
  if (!f.hardwareVirtualisation) {
    return {
      usable: false,
      why: f.pvm
        ? "/dev/kvm is provided by PVM (kvm_pvm), which only runs PVM guest kernels; the CPU has no vmx/svm"
        : "the CPU reports no hardware virtualisation (no vmx/svm in /proc/cpuinfo)"
    }
  }
  return { usable: true, why: "hardware virtualisation (vmx/svm) and a usable /dev/kvm" }
}

export const decideAccel = (facts: KvmFacts, preference: AccelPreference): AccelDecision => {
  const kvm = kvmUsable(facts)
  switch (preference) {
    case "tcg":
      return { accel: "tcg", kvmUsable: kvm.usable, reason: "PYRO_ACCEL=tcg" }
    case "kvm":
      return { accel: "kvm", kvmUsable: kvm.usable, reason: `PYRO_ACCEL=kvm (${kvm.why})` }
    case "auto":
      return kvm.usable
        ? { accel: "kvm", kvmUsable: true, reason: kvm.why }
        : { accel: "tcg", kvmUsable: false, reason: `software emulation (TCG): ${kvm.why}` }
  }
}

const canAccess = (path: string, mode: number) => {
  try {
    Fs.accessSync(path, mode)
    return true
  } catch {
    return false
  }
}

export const probeKvm: Effect.Effect<KvmFacts> = Effect.sync(() => {
  let cpuinfo = ""
  try {
    cpuinfo = Fs.readFileSync("/proc/cpuinfo", "utf8")
  } catch {
    // Not Linux, or /proc hidden: no hardware virtualisation we can prove.
  }
  const flags = cpuinfo.split("\n").find((l) => l.startsWith("flags"))?.split(/\s+/) ?? []
  return {
    deviceExists: Fs.existsSync("/dev/kvm"),
    readable: canAccess("/dev/kvm", Fs.constants.R_OK),
    writable: canAccess("/dev/kvm", Fs.constants.W_OK),
    hardwareVirtualisation: flags.includes("vmx") || flags.includes("svm"),
    pvm: Fs.existsSync("/sys/module/kvm_pvm")
  }
})

/** The host TSC frequency in kHz, from /proc/cpuinfo's "cpu MHz" (see qemu/args.ts for why). */
export const hostTscKhz: Effect.Effect<number | undefined> = Effect.sync(() => {
  try {
    const line = Fs.readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("cpu MHz"))
    const mhz = line ? Number.parseFloat(line.split(":")[1] ?? "") : Number.NaN
    return Number.isFinite(mhz) && mhz > 0 ? Math.round(mhz * 1000) : undefined
  } catch {
    return undefined
  }
})
