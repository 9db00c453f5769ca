/**
 * bench/density: start idle VMs restored from one template until BENCH_VMS
 * (default 200) are up or the host runs short of memory, then run `true` in
 * each. Prints host memory per VM (QEMU's proportional set size, which
 * splits the template's shared pages fairly; goal <= 25 MB) and the p50 exec
 * round trip at full load. Every VM is gone when it ends.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
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
const TARGET = Number(process.env.BENCH_VMS ?? 200)
/** Stop starting VMs below this much available host memory. */
const RESERVE_BYTES = 1.5 * 1024 ** 3

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

const program = Effect.scoped(Effect.gen(function*() {
  const vmm = yield* Vmm
  const assets = yield* (yield* KernelStore).ensure
  const env = yield* (yield* EnvironmentStore).ensure("tiny")
  const spec = (i: number) => bootSpecFor(`d${i}`, assets, env, { vcpus: 1, memMib: MEM, network: false })
  const status = yield* vmm.prepareTemplate(spec(0))
  if (status.state !== "warm") throw new Error(`no template: ${status.reason}`)

  const before = memAvailable()
  const vms: Array<RunningVm> = []
  const started = performance.now()
  let stoppedBecause = `reached ${TARGET}`
  while (vms.length < TARGET) {
    if (memAvailable() < RESERVE_BYTES) {
      stoppedBecause = "host memory running short"
      break
    }
    const batch = yield* Effect.forEach([0, 1, 2, 3].slice(0, TARGET - vms.length), (k) =>
      Effect.gen(function*() {
        const vm = yield* vmm.bootEphemeral(spec(vms.length + k + 1))
        yield* vm.attach
        // The boot connection stays open; exec goes over it below.
        return vm
      }), { concurrency: 4 })
    vms.push(...batch)
  }
  const startSeconds = (performance.now() - started) / 1000
  yield* Effect.sleep("2 seconds") // let them settle into idle
  const pss = vms.reduce((sum, vm) => sum + pssBytes(vm.pid), 0)
  const used = before - memAvailable()

  const rtt: Array<number> = []
  for (const vm of vms) {
    const t = performance.now()
    const r = yield* runCommand(vm.connection, { command: ["true"], cwd: "/workspace", timeoutSeconds: 30, maxOutputBytes: 1024 })
    if (r.exitCode !== 0) throw new Error(`exec failed in ${vm.id}`)
    rtt.push(performance.now() - t)
  }

  const perVm = pss / vms.length / 1e6
  console.log(`bench/density (tiny, ${MEM} MiB guests restored from one template)`)
  console.log(`  VMs up: ${vms.length} (${stoppedBecause}) in ${startSeconds.toFixed(1)} s`)
  console.log(`  host memory per VM (QEMU PSS)         ${perVm.toFixed(1)} MB  (goal <= 25: ${perVm <= 25 ? "met" : "not met"})`)
  console.log(`  host MemAvailable drop per VM          ${(used / vms.length / 1e6).toFixed(1)} MB`)
  console.log(`  exec round trip at full load           p50 ${median(rtt).toFixed(1)} ms`)
}))

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("density")
  yield* program.pipe(Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent)))
})))
