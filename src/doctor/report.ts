/**
 * `pyro doctor`: what this host offers, what pyro chose and why, what is
 * cached, whether a VM really boots, and how to fix what does not work.
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { installHint, SYSTEM_TOOLS, type ToolName } from "../host/systemTools.js"
import { which } from "../host/which.js"
import { EnvironmentStore, type EnvironmentInfo } from "../services/EnvironmentStore.js"
import { type KernelCacheStatus, KernelStore } from "../services/KernelStore.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { VmManager } from "../services/VmManager.js"
import { Vmm, WORKSPACE_TEMPLATE } from "../services/Vmm.js"
import { kvmUsable, probeKvm } from "../vm/accel.js"
import { bootSpecFor } from "../vm/bootSpec.js"
import { sparesReport } from "../vm/spares/store.js"
import { DEFAULT_MEM_MIB, DEFAULT_VCPU_COUNT } from "../contract/common.js"

export const BOOT_CHECK_ENVIRONMENT = "tiny"

export type SpareRow = ReturnType<typeof sparesReport>[number]

export interface Issue {
  readonly problem: string
  readonly fix: string
}

export interface ToolStatus {
  readonly name: string
  readonly found: boolean
  readonly path?: string
  readonly purpose: string
}

export interface DoctorReport {
  readonly platform: string
  readonly runtime: "PASS" | "FAIL"
  readonly kvm: {
    readonly exists: boolean
    readonly readable: boolean
    readonly writable: boolean
    readonly hardware_virtualisation: boolean
    readonly pvm: boolean
    readonly usable: boolean
    readonly detail: string
  }
  readonly accelerator: { readonly selected: "kvm" | "tcg"; readonly reason: string }
  readonly qemu: { readonly found: boolean; readonly path?: string; readonly version?: string }
  readonly tools: ReadonlyArray<ToolStatus>
  readonly paths: { readonly cache_dir: string; readonly state_dir: string }
  readonly kernel: KernelCacheStatus
  readonly environments: ReadonlyArray<EnvironmentInfo>
  /** Spare VMs waiting in the state directory, per shape (outside the active-VM limit). */
  readonly spares: ReadonlyArray<SpareRow>
  readonly boot_check:
    | { readonly ran: false; readonly reason: string }
    | { readonly ran: true; readonly ok: boolean; readonly environment: string; readonly boot_ms?: number; readonly total_ms: number; readonly error?: string }
  readonly issues: ReadonlyArray<Issue>
  /** With --environment: whether VMs of it start warm (from a template), cold, or from a stale template's replacement. */
  readonly environment?: {
    readonly name: string
    readonly installed: boolean
    readonly template: "warm" | "stale" | "cold"
    readonly template_key: string | null
    readonly reasons: ReadonlyArray<string>
    /** The same for workspaces, which start from a template of their own (journaled scratch disk). */
    readonly workspace_template: {
      readonly state: "warm" | "stale" | "cold"
      readonly key: string | null
      readonly reasons: ReadonlyArray<string>
    }
  }
}

/** The tools pyro itself runs (the VMM is checked on its own, as PYRO_QEMU may name another). */
const TOOLS = (Object.keys(SYSTEM_TOOLS) as Array<ToolName>).filter((name) =>
  (SYSTEM_TOOLS[name].use === "runtime" || SYSTEM_TOOLS[name].use === "build") && name !== "qemu-system-x86_64"
)

/** What VMs with `network` need beyond the tools (src/vm/network/egress.ts). */
const networkProblems = (): Array<Issue> => {
  const problems: Array<Issue> = []
  try {
    Fs.accessSync("/dev/net/tun", Fs.constants.R_OK | Fs.constants.W_OK)
  } catch {
    problems.push({
      problem: "/dev/net/tun is not open to this user: VMs with network cannot start (pasta needs it)",
      fix: "sudo chmod 0666 /dev/net/tun (Debian's default), or run pyro as root"
    })
  }
  try {
    if (Number(Fs.readFileSync("/proc/sys/user/max_user_namespaces", "utf8")) === 0) {
      problems.push({
        problem: "user namespaces are off: VMs with network cannot start",
        fix: "sudo sysctl user.max_user_namespaces=15000"
      })
    }
  } catch {
    // no such sysctl: namespaces are not limited by it
  }
  return problems
}

const qemuVersion = (path: string) =>
  Effect.sync(() => {
    try {
      return ChildProcess.execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 }).split("\n")[0]?.trim()
    } catch {
      return undefined
    }
  })

export const doctorReport = (options: { readonly bootCheck: boolean; readonly environment?: string }) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const vmm = yield* Vmm
    const kernels = yield* KernelStore
    const environments = yield* EnvironmentStore
    const manager = yield* VmManager
    const issues: Array<Issue> = []

    const facts = yield* probeKvm
    const kvm = kvmUsable(facts)
    if (vmm.accel.accel === "tcg" && !kvm.usable) {
      issues.push({
        problem: `KVM is not usable (${kvm.why}); VMs run under software emulation, roughly 10x slower`,
        fix: facts.deviceExists && !(facts.readable && facts.writable)
          ? "add your user to the kvm group (sudo usermod -aG kvm $USER) and log in again"
          : "run on a host with hardware virtualisation (vmx/svm) for KVM speed; everything works without it"
      })
    }

    const qemuPath = which(config.qemuBinary)
    if (!qemuPath) issues.push({ problem: `${config.qemuBinary} not found`, fix: "sudo apt-get install qemu-system-x86" })
    const tools = TOOLS.map((name): ToolStatus => {
      const path = which(name)
      const purpose = SYSTEM_TOOLS[name].purpose
      if (!path) issues.push({ problem: `${name} not found (${purpose})`, fix: installHint(name) })
      return path ? { name, found: true, path, purpose } : { name, found: false, purpose }
    })

    for (const problem of networkProblems()) issues.push(problem)

    const kernel = yield* kernels.status
    const envs = yield* environments.list

    let bootCheck: DoctorReport["boot_check"] = { ran: false, reason: "skipped (--no-boot)" }
    if (options.bootCheck && qemuPath) {
      const started = Date.now()
      bootCheck = yield* manager.run({
        environment: BOOT_CHECK_ENVIRONMENT,
        command: ["true"],
        vcpu_count: 1,
        mem_mib: 256,
        timeout_seconds: 30,
        ttl_seconds: 60,
        network: false,
        allow_host_compat: false
      }, { useSpare: false }).pipe(
        Effect.map(({ result }) => ({
          ran: true as const,
          ok: result.exit_code === 0,
          environment: BOOT_CHECK_ENVIRONMENT,
          boot_ms: result.boot_ms,
          total_ms: Date.now() - started
        })),
        Effect.catchAll((e) => {
          issues.push({
            problem: `boot check failed: ${e.message.split("\n")[0]}`,
            fix: "see the error above; `pyro doctor --json` shows the guest console"
          })
          return Effect.succeed({
            ran: true as const,
            ok: false,
            environment: BOOT_CHECK_ENVIRONMENT,
            total_ms: Date.now() - started,
            error: e.message
          })
        })
      )
    } else if (options.bootCheck) {
      bootCheck = { ran: false, reason: "QEMU is missing" }
    }

    // Whether pyro can run VMs at all: KVM being unusable only makes them slower,
    // and an environment that starts cold is advice, not a failure.
    const runtimeOk = !issues.some((i) => !i.problem.startsWith("KVM"))
    let environmentReport: DoctorReport["environment"]
    if (options.environment !== undefined) {
      const name = options.environment
      const installed = yield* environments.installed(name).pipe(
        Effect.catchAll((e) => {
          issues.push({ problem: e.message, fix: "pick a name from `pyro env list`" })
          return Effect.succeed(undefined)
        })
      )
      const assets = installed ? yield* Effect.option(kernels.ensure) : undefined
      if (installed && assets && assets._tag === "Some") {
        const spec = bootSpecFor("doctor", assets.value, installed, {
          vcpus: DEFAULT_VCPU_COUNT,
          memMib: DEFAULT_MEM_MIB,
          network: false
        })
        const t = yield* vmm.templateReport(spec)
        const w = yield* vmm.templateReport(spec, WORKSPACE_TEMPLATE)
        environmentReport = {
          name,
          installed: true,
          template: t.state,
          template_key: t.key ?? null,
          reasons: t.reasons,
          workspace_template: { state: w.state, key: w.key ?? null, reasons: w.reasons }
        }
        if (t.state !== "warm") {
          issues.push({ problem: `${name} VMs start cold (${t.reasons.join("; ")})`, fix: `pyro prepare ${name}` })
        }
        if (w.state !== "warm") {
          issues.push({ problem: `${name} workspaces start cold (${w.reasons.join("; ")})`, fix: `pyro prepare ${name}` })
        }
      } else {
        environmentReport = {
          name,
          installed: false,
          template: "cold",
          template_key: null,
          reasons: ["environment not installed"],
          workspace_template: { state: "cold", key: null, reasons: ["environment not installed"] }
        }
        issues.push({ problem: `${name} is not installed`, fix: `pyro env pull ${name} && pyro prepare ${name}` })
      }
    }

    const report: DoctorReport = {
      platform: `${Os.platform()}-${Os.arch() === "x64" ? "x86_64" : Os.arch()}`,
      runtime: runtimeOk ? "PASS" : "FAIL",
      kvm: {
        exists: facts.deviceExists,
        readable: facts.readable,
        writable: facts.writable,
        hardware_virtualisation: facts.hardwareVirtualisation,
        pvm: facts.pvm,
        usable: kvm.usable,
        detail: kvm.why
      },
      accelerator: { selected: vmm.accel.accel, reason: vmm.accel.reason },
      qemu: qemuPath ? { found: true, path: qemuPath, ...withVersion(yield* qemuVersion(qemuPath)) } : { found: false },
      tools,
      paths: { cache_dir: config.cacheDir, state_dir: config.stateDir },
      kernel,
      environments: envs,
      spares: sparesReport(config.stateDir),
      boot_check: bootCheck,
      issues,
      ...(environmentReport ? { environment: environmentReport } : {})
    }
    return report
  })

const withVersion = (version: string | undefined) => (version ? { version } : {})
