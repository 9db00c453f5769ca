/**
 * bench/density: how many idle VMs one host carries. Starts `tiny` VMs
 * restored from one template (attached, then left idle) step by step to
 * N = 1, 50, 100, 200 (BENCH_VMS caps the top; a step the host's memory
 * cannot hold ends the run early, saying so), and at each N prints:
 * - host CPU busy over a 15 s window (/proc/stat, all cores, in %), and
 *   the VMs' QEMUs' own share of it (other work on the host shows only in
 *   the first),
 * - host memory per idle VM: QEMU's proportional set size, which splits the
 *   template's shared pages fairly, averaged over the VMs that have run no
 *   command since their restore (read before this step's execs; a VM that
 *   has run one also holds its translated code, so the mean over every VM
 *   is printed beside it),
 * - the `true` round trip: in a sample of up to 20 VMs spread across all
 *   of them, one exec each (a fresh VM's first exec pays TCG translation;
 *   printed apart) and then three timed ones, whose p50 is the figure that
 *   is compared with N=1.
 * Ends with the goals of issue 16 and one summary line for scripts. Every VM
 * dies with the run's scope, also on failure or Ctrl-C.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { EnvironmentStore } from "../src/services/EnvironmentStore.js"
import { KernelStore } from "../src/services/KernelStore.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { type RunningVm, Vmm } from "../src/services/Vmm.js"
import { bootSpecFor } from "../src/vm/bootSpec.js"
import { runCommand } from "../src/vm/execCommand.js"
import { benchDir, median, runBench } from "./support.js"

const MEM = 256
const TOP = Number(process.env.BENCH_VMS ?? 200)
const STEPS = [...new Set([1, 50, 100, 200].filter((n) => n < TOP).concat(TOP))]
/** Restores at a time: enough to fill 200 in a few minutes, few enough not to starve the VMs already idle. */
const BATCH = 4
/** After the last restore, before the window: the newest VMs finish their post-restore work. */
const SETTLE = "5 seconds"
const WINDOW_SECONDS = 15
const SAMPLE = 20
const TIMED_EXECS = 3
/** Start no more VMs below this much available host memory. */
const RESERVE_BYTES = 1.5 * 1024 ** 3
const GOAL = { idleCpuPct: 20, execRatio: 2, pssMb: 20, n: 200 }

const memAvailable = () => {
  const m = /MemAvailable:\s+(\d+) kB/.exec(Fs.readFileSync("/proc/meminfo", "utf8"))
  return m ? Number(m[1]) * 1024 : 0
}

const pssBytes = (pid: number) => {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(Fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Busy and total jiffies of all cores since boot (iowait counts as idle). */
const cpuTimes = () => {
  const fields = Fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  return { busy: total - fields[3]! - fields[4]!, total }
}

/** CPU time a process has used (all its threads), in clock ticks (USER_HZ, 100 on Linux). */
const processTicks = (pid: number) => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}
const USER_HZ = 100

/**
 * Over `seconds`: the share of the whole host (every core) that was busy,
 * and the share the VMs' QEMUs used, in %. Other work on the host shows in
 * the first only.
 */
const hostBusyPct = (seconds: number, pids: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const before = cpuTimes()
    const qemuBefore = pids.reduce((sum, pid) => sum + processTicks(pid), 0)
    const started = performance.now()
    yield* Effect.sleep(`${seconds} seconds`)
    const after = cpuTimes()
    const qemuTicks = pids.reduce((sum, pid) => sum + processTicks(pid), 0) - qemuBefore
    const elapsed = (performance.now() - started) / 1000
    return {
      busyPct: (100 * (after.busy - before.busy)) / (after.total - before.total),
      qemuPct: (100 * qemuTicks) / USER_HZ / elapsed / Os.cpus().length
    }
  })

/** Up to `k` distinct indices spread evenly over 0..n-1, both ends included. */
const spread = (n: number, k: number) => {
  const m = Math.min(n, k)
  return m <= 1 ? [0] : Array.from({ length: m }, (_, i) => Math.round((i * (n - 1)) / (m - 1)))
}

interface Step {
  readonly n: number
  readonly busyPct: number
  readonly qemuPct: number
  readonly pssMb: number
  readonly firstExecMs: number | undefined
  readonly execMs: number
}

const program = Effect.gen(function*() {
  const vmm = yield* Vmm
  const assets = yield* (yield* KernelStore).ensure
  const env = yield* (yield* EnvironmentStore).ensure("tiny")
  const spec = (i: number) => bootSpecFor(`d${i}`, assets, env, { vcpus: 1, memMib: MEM, network: false })
  const status = yield* vmm.prepareTemplate(spec(0))
  if (status.state !== "warm") return yield* Effect.fail(new Error(`no template: ${status.reason}`))

  const vms: Array<RunningVm> = []
  /** VMs that have run a command since their restore. */
  const used = new Set<RunningVm>()
  const timedTrue = (vm: RunningVm) =>
    Effect.gen(function*() {
      const t = performance.now()
      const r = yield* runCommand(vm.connection, { command: ["true"], cwd: "/workspace", timeoutSeconds: 60, maxOutputBytes: 1024 })
      if (r.exitCode !== 0) return yield* Effect.fail(new Error(`true exited ${r.exitCode} in ${vm.id}`))
      used.add(vm)
      return performance.now() - t
    })

  const steps: Array<Step> = []
  let stoppedEarly: string | undefined
  console.log(`bench/density (tiny, ${MEM} MiB guests restored from one template; steps ${STEPS.join(", ")})`)
  for (const n of STEPS) {
    const started = performance.now()
    while (vms.length < n && stoppedEarly === undefined) {
      if (memAvailable() < RESERVE_BYTES) {
        stoppedEarly = `host memory running short at ${vms.length} VMs`
        break
      }
      const batch = yield* Effect.forEach(
        Array.from({ length: Math.min(BATCH, n - vms.length) }, (_, k) => vms.length + k + 1),
        (i) =>
          Effect.gen(function*() {
            const vm = yield* vmm.bootEphemeral(spec(i))
            // The boot connection stays open; the execs below go over it.
            yield* vm.attach
            return vm
          }),
        { concurrency: BATCH }
      )
      vms.push(...batch)
    }
    if (vms.length < n && (steps.at(-1)?.n ?? 0) === vms.length) break
    const startSeconds = (performance.now() - started) / 1000
    yield* Effect.sleep(SETTLE)
    const { busyPct, qemuPct } = yield* hostBusyPct(WINDOW_SECONDS, vms.map((vm) => vm.pid))
    const meanPssMb = (of: ReadonlyArray<RunningVm>) => of.reduce((sum, vm) => sum + pssBytes(vm.pid), 0) / of.length / 1e6
    const idle = vms.filter((vm) => !used.has(vm))
    const pssMb = meanPssMb(idle.length > 0 ? idle : vms)
    const pssAllMb = meanPssMb(vms)
    const first: Array<number> = []
    const timed: Array<number> = []
    for (const i of spread(vms.length, SAMPLE)) {
      const vm = vms[i]!
      const fresh = !used.has(vm)
      const ms = yield* timedTrue(vm)
      if (fresh) first.push(ms)
      for (let k = 0; k < TIMED_EXECS; k++) timed.push(yield* timedTrue(vm))
    }
    const step: Step = {
      n: vms.length,
      busyPct,
      qemuPct,
      pssMb,
      firstExecMs: first.length > 0 ? median(first) : undefined,
      execMs: median(timed)
    }
    steps.push(step)
    const ratio = step.execMs / steps[0]!.execMs
    console.log(
      `  N=${String(step.n).padStart(3)}: host CPU busy ${busyPct.toFixed(1)} % (QEMUs ${qemuPct.toFixed(1)} %, ${WINDOW_SECONDS} s)  PSS ${pssMb.toFixed(1)} MB/idle VM (${pssAllMb.toFixed(1)} over all)  ` +
        `exec true p50 ${step.execMs.toFixed(1)} ms (x${ratio.toFixed(2)} of N=1; first exec ${
          step.firstExecMs?.toFixed(0) ?? "-"
        } ms)  [${vms.length - (steps.at(-2)?.n ?? 0)} restored in ${startSeconds.toFixed(1)} s]`
    )
    if (stoppedEarly !== undefined) break
  }

  const top = steps.at(-1)
  if (top === undefined) return yield* Effect.fail(new Error(`no VM started: ${stoppedEarly}`))
  const execRatio = top.execMs / steps[0]!.execMs
  if (stoppedEarly !== undefined) console.log(`  stopped early: ${stoppedEarly}`)
  const verdict = (ok: boolean) => (top.n < GOAL.n ? `not measured at ${GOAL.n}` : ok ? "met" : "not met")
  console.log(`  goal: host CPU busy at N=${GOAL.n} <= ${GOAL.idleCpuPct} %: ${verdict(top.busyPct <= GOAL.idleCpuPct)}`)
  console.log(`  goal: exec p50 at N=${GOAL.n} <= ${GOAL.execRatio}x N=1: ${verdict(execRatio <= GOAL.execRatio)}`)
  console.log(`  goal: PSS per idle VM at N=${GOAL.n} <= ${GOAL.pssMb} MB: ${verdict(top.pssMb <= GOAL.pssMb)}`)
  console.log(
    `density: n=${top.n} idle_cpu_pct=${top.busyPct.toFixed(1)} exec_p50_ratio=${execRatio.toFixed(2)} pss_mb=${top.pssMb.toFixed(1)}`
  )
})

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("density")
  yield* program.pipe(Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent)))
})))
