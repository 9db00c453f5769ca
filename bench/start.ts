/**
 * bench/start: in one run, median of N each (BENCH_N, default 10):
 *  - cold `vm_run true` (templates off), warm `vm_run true` (from a template), and warm
 *    `vm_run true` served by a warm pool of one, in process;
 *  - a raw QEMU restore of the same template to the agent's first answer (spawn, QMP
 *    device-state load, channel handshake and one ping): the floor for a warm start;
 *  - the whole CLI, `pyro run tiny -- true`, warm, against gVisor's
 *    `runsc --network=none do true` (Debian's runsc), if installed;
 *  - in restored VMs, the first and the second `true`: what TCG's per-process translation
 *    adds to a warm start, which the raw restore (a ping) does not pay.
 * Prints warm/cold (goal <= 0.05), warm/raw-restore (goal <= 1.5), the same two for the
 * pooled start, and cli/gvisor (goal <= 1.0); the last line, for scripts, is
 * `start: cli_gvisor=R warm_cold=W`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { VmRunInput } from "../src/contract/vm.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { EnvironmentStore } from "../src/services/EnvironmentStore.js"
import { KernelStore } from "../src/services/KernelStore.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { VmManager } from "../src/services/VmManager.js"
import { Vmm } from "../src/services/Vmm.js"
import { hostTscKhz } from "../src/vm/accel.js"
import { connectAgent } from "../src/vm/agentConnection.js"
import { runCommand } from "../src/vm/execCommand.js"
import { bootSpecFor } from "../src/vm/bootSpec.js"
import { qemuArgs } from "../src/vm/qemu/args.js"
import { awaitMigration, connectQmp } from "../src/vm/qemu/qmp.js"
import { which } from "../src/host/which.js"
import { benchDir, fmtMs, iterations, median, pyroBin, runBench, timeProcess } from "./support.js"

const MEM = 256
const input = Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command: ["true"], mem_mib: MEM })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([d]) => Duration.toMillis(d))

/** Spawn QEMU on the template, load its device state, and wait for the agent's answer to a ping. */
const rawRestore = (template: string, dir: string, base: Parameters<typeof qemuArgs>[0]) =>
  Effect.scoped(Effect.gen(function*() {
    const id = Math.random().toString(16).slice(2, 8)
    const paths = {
      channel: Path.join(dir, `${id}.chan`),
      qmp: Path.join(dir, `${id}.qmp`),
      scratch: Path.join(dir, `${id}.img`)
    }
    Fs.writeFileSync(paths.scratch, "")
    Fs.truncateSync(paths.scratch, 8192 * 1024 * 1024)
    const started = performance.now()
    const child = ChildProcess.spawn("qemu-system-x86_64", [...qemuArgs({
      ...base,
      scratchImage: paths.scratch,
      channelSocket: paths.channel,
      qmpSocket: paths.qmp,
      memoryFile: { path: Path.join(template, "ram"), share: false },
      restore: true
    })], { stdio: "ignore", detached: true })
    yield* Effect.addFinalizer(() => Effect.sync(() => {
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // gone
      }
      for (const p of Object.values(paths)) Fs.rmSync(p, { force: true })
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const qmp = yield* connectQmp(paths.qmp, 10_000)
      yield* qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })
      yield* qmp.execute("migrate-incoming", { uri: `exec:cat '${Path.join(template, "state")}'` })
      yield* awaitMigration(qmp, "migrate-incoming", 10_000)
      yield* qmp.execute("cont")
    }))
    const conn = yield* connectAgent(paths.channel)
    yield* conn.ping(new Uint8Array(4))
    return performance.now() - started
  }))

const program = Effect.scoped(Effect.gen(function*() {
  const n = iterations(10)
  const stateDir = yield* benchDir("start")
  const warmLayer = servicesLayer(layerWith({ stateDir }), ProgressSilent)
  const coldLayer = servicesLayer(layerWith({ stateDir, templates: false }), ProgressSilent)

  // The template, and the raw restore's command line, from the same inputs pyro uses.
  const { templateDir, base } = yield* Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    const status = yield* (yield* Vmm).prepareTemplate(bootSpecFor("bench", assets, env, { vcpus: 1, memMib: MEM, network: false }))
    if (status.state !== "warm") throw new Error(`no template: ${status.reason}`)
    return {
      templateDir: status.dir!,
      base: {
        name: "pyro-bench-raw",
        accel: (yield* Vmm).accel.accel,
        vcpus: 1,
        memMib: MEM,
        kernel: assets.kernel,
        initrd: assets.initrd,
        rootImage: env.rootImage,
        scratchImage: "",
        channelSocket: "",
        qmpSocket: "",
        consoleLog: Path.join(stateDir, "raw-console.log"),
        network: false,
        tscKhz: yield* hostTscKhz,
      }
    }
  }).pipe(Effect.provide(warmLayer))

  const runTimes = (layer: typeof warmLayer) =>
    Effect.gen(function*() {
      const vms = yield* VmManager
      yield* vms.run(input) // warm-up
      const times: Array<number> = []
      for (let i = 0; i < n; i++) times.push(yield* timed(vms.run(input)))
      return times
    }).pipe(Effect.provide(layer))

  const phase = (name: string) => Effect.sync(() => console.error(`[bench] ${name}`))
  yield* phase("cold")
  const cold = yield* runTimes(coldLayer)
  yield* phase("warm")
  const warm = yield* runTimes(warmLayer)
  yield* phase("pooled")
  // With a warm pool (long-lived processes): each run takes a ready VM; the pool refills between runs.
  const pooled = yield* Effect.gen(function*() {
    const vms = yield* VmManager
    yield* vms.setWarmPool(1)
    yield* phase("pool on")
    yield* vms.run(input)
    yield* phase("first pooled run")
    const times: Array<number> = []
    for (let i = 0; i < n; i++) {
      yield* Effect.sleep("1500 millis")
      times.push(yield* timed(vms.run(input)))
      yield* phase(`pooled ${i}`)
    }
    yield* vms.setWarmPool(0)
    yield* phase("pool off")
    return times
  }).pipe(Effect.provide(warmLayer))
  yield* phase("first and second exec")
  // Where a warm start's time goes under TCG: each QEMU translates the guest code it runs
  // afresh, so a restored VM's first command costs more than its second.
  const firstExec: Array<number> = []
  const secondExec: Array<number> = []
  yield* Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    for (let i = 0; i < n; i++) {
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* (yield* Vmm).bootEphemeral(bootSpecFor(`execs${i}`, assets, env, { vcpus: 1, memMib: MEM, network: false }))
        yield* vm.attach
        const exec = runCommand(vm.connection, { command: ["true"], cwd: "/workspace", timeoutSeconds: 30, maxOutputBytes: 1024 })
        firstExec.push(yield* timed(exec))
        secondExec.push(yield* timed(exec))
      }))
    }
  }).pipe(Effect.provide(warmLayer))

  yield* phase("raw restore")
  const raw: Array<number> = []
  yield* rawRestore(templateDir, stateDir, base)
  for (let i = 0; i < n; i++) raw.push(yield* rawRestore(templateDir, stateDir, base))

  yield* phase("cli and gVisor")
  const env = { ...process.env, PYRO_STATE_DIR: stateDir }
  const cli: Array<number> = []
  yield* timeProcess(process.execPath, [pyroBin, "run", "tiny", "--mem-mib", String(MEM), "--", "true"], env)
  for (let i = 0; i < n; i++) cli.push(yield* timeProcess(process.execPath, [pyroBin, "run", "tiny", "--mem-mib", String(MEM), "--", "true"], env))
  const gvisor: Array<number> = []
  const runsc = which("runsc")
  if (runsc) {
    yield* timeProcess(runsc, ["--network=none", "do", "true"])
    for (let i = 0; i < n; i++) gvisor.push(yield* timeProcess(runsc, ["--network=none", "do", "true"]))
  }

  const m = { cold: median(cold), warm: median(warm), pooled: median(pooled), raw: median(raw), cli: median(cli), gvisor: median(gvisor) }
  const execs = { first: median(firstExec), second: median(secondExec) }
  console.log(`bench/start (tiny, ${MEM} MiB, ${n} runs each)`)
  console.log(`  cold vm_run true (in process)          median ${fmtMs(m.cold)}`)
  console.log(`  warm vm_run true (in process)          median ${fmtMs(m.warm)}`)
  console.log(`  warm vm_run true from the warm pool    median ${fmtMs(m.pooled)}`)
  console.log(`  raw QEMU restore to first echo         median ${fmtMs(m.raw)}`)
  console.log(`  pyro run tiny -- true (CLI, warm)      median ${fmtMs(m.cli)}`)
  console.log(`  restored VM: first exec of true        median ${fmtMs(execs.first)}, second ${fmtMs(execs.second)}`)
  if (runsc) console.log(`  runsc --network=none do true (gVisor)  median ${fmtMs(m.gvisor)}`)
  const goal = (ratio: number, limit: number) => `${ratio.toFixed(3)}  (goal <= ${limit}: ${ratio <= limit ? "met" : "not met"})`
  console.log(`  ratio warm/cold = ${goal(m.warm / m.cold, 0.05)}`)
  console.log(`  ratio warm/raw-restore = ${goal(m.warm / m.raw, 1.5)}`)
  console.log(`  with the warm pool: pooled/cold = ${goal(m.pooled / m.cold, 0.05)}, pooled/raw-restore = ${goal(m.pooled / m.raw, 1.5)}`)
  if (runsc) console.log(`  ratio cli/gvisor = ${goal(m.cli / m.gvisor, 1.0)}`)
  else console.log("  cli/gvisor: runsc not installed (sudo apt-get install runsc)")
  // Last, for scripts: one line of the two start-up ratios (cli_gvisor=none without runsc).
  const cliGvisor = runsc ? (m.cli / m.gvisor).toFixed(3) : "none"
  console.log(`start: cli_gvisor=${cliGvisor} warm_cold=${(m.warm / m.cold).toFixed(3)}`)
}))

runBench(program)
