/**
 * bench/start: in one run, median of N each (BENCH_N, default 10):
 *  - cold `vm_run true` (templates off), warm `vm_run true` (from a template), and
 *    `vm_run true` served by a spare VM (src/vm/spares/), in process: the warm start a process
 *    gets without a pool of its own;
 *  - a raw QEMU restore of the same template to the agent's first answer (spawn, QMP
 *    device-state load, channel handshake and one ping): the floor for a warm start;
 *  - the whole CLI, `pyro run tiny -- true`, from a template and with a spare ready, against
 *    gVisor's `runsc --network=none do true` (Debian's runsc), if installed;
 *  - in restored VMs, the first and the second `true`: what TCG's per-process translation
 *    adds to a warm start, which the raw restore (a ping) does not pay.
 * Each spare-served run waits until the shape's spares are all ready again (the filler that
 * replaces the last one done), so no refill runs while it is timed; the CLI's spare-served
 * runs and gVisor's alternate under those same conditions, so their ratio does not carry
 * the machine's drift between two phases minutes apart.
 * Prints spare/cold (goal <= 0.05), spare/raw-restore (goal <= 1.5), the same two for the
 * template start, and cli/gvisor with a spare (goal <= 1.0); the last line, for scripts, is
 * `start: cli_gvisor=R warm_cold=W` (the spare-served figures).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
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
import { PyroConfig } from "../src/services/PyroConfig.js"
import { fillSpares, spareSpec } from "../src/vm/spares/fill.js"
import { listSpares, reapSpares, spareHostOf, spareKey, writeTarget } from "../src/vm/spares/store.js"
import { benchDir, fmtMs, iterations, median, pyroBin, runBench, timed, timeProcess } from "./support.js"

const MEM = 256
/** Spares kept of the shape while spare-served runs are timed. */
const SPARES = 2
const RUNSC_ARGS = ["--network=none", "do", "true"]

const readySpares = (stateDir: string, key: string) =>
  listSpares(stateDir, key).filter((e) => Option.isSome(e.record) && e.record.value.state === "ready").length
const input = Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command: ["true"], mem_mib: MEM })

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
  yield* phase("cli from a template")
  const env = { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_SPARES: "0" }
  // As a user runs it: the script itself, so its first line (bin/pyro.js) applies.
  const cliArgs = ["run", "tiny", "--mem-mib", String(MEM), "--", "true"]
  const cliTemplate: Array<number> = []
  yield* timeProcess(pyroBin, cliArgs, env)
  for (let i = 0; i < n; i++) cliTemplate.push(yield* timeProcess(pyroBin, cliArgs, env))

  yield* phase("spares")
  const runsc = which("runsc")
  // Spares of this shape, as `pyro prepare tiny --mem-mib 256 --spares 2` keeps them: any process claims one.
  const { spareRun, spareCli, gvisor, gvisorFailure } = yield* Effect.gen(function*() {
    const shape = { environment: "tiny", vcpu_count: 1, mem_mib: MEM }
    const key = spareKey(yield* spareSpec(shape), spareHostOf(yield* PyroConfig, (yield* Vmm).vmmExecutable))!
    const qemu = (yield* Vmm).vmmExecutable
    yield* writeTarget(stateDir, key, shape, SPARES)
    // However this phase ends, the shape wants no more spares and those it has go.
    const done = Effect.zipRight(writeTarget(stateDir, key, shape, 0), reapSpares(stateDir, { idleMs: 0, qemu, all: true }))
    return yield* Effect.gen(function*() {
      yield* fillSpares(shape, SPARES)
      const allReady = Effect.gen(function*() {
        const deadline = Date.now() + 120_000
        while (readySpares(stateDir, key) < SPARES) {
          if (Date.now() > deadline) throw new Error("spares were not replaced within 120 s (see spares/filler.log)")
          yield* Effect.sleep("100 millis")
        }
        yield* Effect.sleep("1 second") // the filler's exit
      })
      const vms = yield* VmManager
      yield* vms.run(input) // warm-up
      const spareRun: Array<number> = []
      for (let i = 0; i < n; i++) {
        yield* allReady
        spareRun.push(yield* timed(vms.run(input)))
      }
      // The CLI with a spare ready and gVisor alternate, each with no refill running, and
      // each first every other round: the machine's speed drifts over minutes here, and a
      // ratio of two series timed minutes apart would carry that drift. A failing runsc
      // drops gVisor's series, not the rest.
      const spareCli: Array<number> = []
      const gvisor: Array<number> = []
      let gvisorFailure: string | undefined
      const timeCli = Effect.gen(function*() {
        yield* allReady
        spareCli.push(yield* timeProcess(pyroBin, cliArgs, env))
      })
      const timeGvisor = (series: Array<number>) =>
        Effect.gen(function*() {
          if (!runsc || gvisorFailure !== undefined) return
          yield* allReady
          const ms = yield* Effect.either(timeProcess(runsc, RUNSC_ARGS))
          if (Either.isLeft(ms)) gvisorFailure = ms.left.message
          else series.push(ms.right)
        })
      yield* allReady
      yield* timeProcess(pyroBin, cliArgs, env) // warm-up (the CLI's code cache)
      yield* timeGvisor([]) // warm-up
      for (let i = 0; i < n; i++) {
        if (i % 2 === 0) yield* Effect.zipRight(timeCli, timeGvisor(gvisor))
        else yield* Effect.zipRight(timeGvisor(gvisor), timeCli)
      }
      return { spareRun, spareCli, gvisor, gvisorFailure }
    }).pipe(Effect.ensuring(Effect.orDie(done)))
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

  const m = {
    cold: median(cold),
    warm: median(warm),
    spare: median(spareRun),
    raw: median(raw),
    cliTemplate: median(cliTemplate),
    cli: median(spareCli),
    gvisor: median(gvisor)
  }
  const execs = { first: median(firstExec), second: median(secondExec) }
  console.log(`bench/start (tiny, ${MEM} MiB, ${n} runs each)`)
  console.log(`  cold vm_run true (in process)          median ${fmtMs(m.cold)}`)
  console.log(`  warm vm_run true from a template       median ${fmtMs(m.warm)}`)
  console.log(`  vm_run true served by a spare VM       median ${fmtMs(m.spare)}`)
  console.log(`  raw QEMU restore to first echo         median ${fmtMs(m.raw)}`)
  console.log(`  pyro run tiny -- true, from a template median ${fmtMs(m.cliTemplate)}`)
  console.log(`  pyro run tiny -- true, a spare ready   median ${fmtMs(m.cli)}`)
  console.log(`  restored VM: first exec of true        median ${fmtMs(execs.first)}, second ${fmtMs(execs.second)}`)
  // gVisor's figure only from a whole series: none without runsc, or when it failed.
  const gvisorTimed = runsc !== undefined && gvisorFailure === undefined && gvisor.length > 0
  if (gvisorTimed) console.log(`  runsc --network=none do true (gVisor)  median ${fmtMs(m.gvisor)}`)
  const goal = (ratio: number, limit: number) => `${ratio.toFixed(3)}  (goal <= ${limit}: ${ratio <= limit ? "met" : "not met"})`
  console.log(`  ratio spare/cold = ${goal(m.spare / m.cold, 0.05)}, spare/raw-restore = ${goal(m.spare / m.raw, 1.5)}`)
  console.log(`  from a template: warm/cold = ${(m.warm / m.cold).toFixed(3)}, warm/raw-restore = ${(m.warm / m.raw).toFixed(3)}`)
  if (gvisorTimed) {
    console.log(`  ratio cli/gvisor, a spare ready = ${goal(m.cli / m.gvisor, 1.0)}; from a template = ${(m.cliTemplate / m.gvisor).toFixed(3)}`)
  }
  else if (gvisorFailure !== undefined) console.log(`  cli/gvisor: runsc failed (${gvisorFailure.split("\n")[0]})`)
  else console.log("  cli/gvisor: runsc not installed (sudo apt-get install runsc)")
  // Last, for scripts: one line of the two start-up ratios (cli_gvisor=none without gVisor's figure).
  const cliGvisor = gvisorTimed ? (m.cli / m.gvisor).toFixed(3) : "none"
  console.log(`start: cli_gvisor=${cliGvisor} warm_cold=${(m.spare / m.cold).toFixed(3)}`)
}))

runBench(program)
