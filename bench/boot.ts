/**
 * bench/boot: `pyro run tiny -- true` booting cold (PYRO_COLD_BOOT=1), the whole
 * CLI from spawn to exit, against a raw QEMU boot-to-exit of the same kernel, initramfs, disks and command line
 * (the agent powers off as soon as it is ready). Alternated in one run; prints
 * medians and their ratio. Goal: ratio <= 1.15. A third series runs the CLI without
 * its head start (the shape's plan removed before each run), for what the head start
 * saves. Then, for where a cold run's guest time goes, a few cold VMs booted in
 * process report the code TCG translated (QEMU's `info jit`) up to the agent's
 * hello, for attach, and for a first and a second `true`: under TCG a guest's
 * first run of any code, the kernel's included, is paid again in every VM. The
 * last line, for scripts, is `boot: boot_raw=B`.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { EnvironmentStore } from "../src/services/EnvironmentStore.js"
import { KernelStore } from "../src/services/KernelStore.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { PyroConfig } from "../src/services/PyroConfig.js"
import { Vmm } from "../src/services/Vmm.js"
import { bootSpecFor } from "../src/vm/bootSpec.js"
import { runCommand } from "../src/vm/execCommand.js"
import { planFileFor } from "../src/vm/headStart/recipe.js"
import { connectQmp } from "../src/vm/qemu/qmp.js"
import { vmPaths } from "../src/vm/vmDir.js"
import { benchDir, fmtMs, iterations, median, pyroBin, rawTinyVm, runBench, services, timed, timeProcess } from "./support.js"

const GOAL = 1.15
/** Cold VMs whose translated code is counted. */
const TCG_VMS = 3
/** The count's bound: a hung VM must not hold back the summary line. */
const TCG_SECTION_TIMEOUT = "3 minutes"

/**
 * `info jit`'s "TB count" and "TB flush count": the blocks TCG has translated since its
 * last flush (those invalidated since included), and how many flushes there were.
 */
const translatedBlocks = (qmpSocket: string) =>
  Effect.scoped(Effect.gen(function*() {
    const qmp = yield* connectQmp(qmpSocket, 5_000)
    const text = String(yield* qmp.execute("human-monitor-command", { "command-line": "info jit" }))
    const blocks = /TB count\s+(\d+)/.exec(text)?.[1]
    const flushes = /TB flush count\s+(\d+)/.exec(text)?.[1]
    return blocks === undefined || flushes === undefined
      ? yield* Effect.fail(new Error(`no TB count or flush count in: ${text.slice(0, 200)}`))
      : { blocks: Number(blocks), flushes: Number(flushes) }
  }))

/**
 * One cold tiny VM, booted in process: the blocks translated up to the agent's hello, then by
 * attach, a first `true` and a second, with each step's time. A flush in between (the
 * translation buffer full) would make the differences meaningless: it fails then.
 */
const coldVmBlocks = (id: string) =>
  Effect.scoped(Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    const qmpSocket = vmPaths((yield* PyroConfig).stateDir, id).qmpSocket
    const vm = yield* (yield* Vmm).bootEphemeral(bootSpecFor(id, assets, env, { vcpus: 1, memMib: 1024, network: false }))
    const exec = runCommand(vm.connection, { command: ["true"], cwd: "/workspace", timeoutSeconds: 60, maxOutputBytes: 1024 })
    const boot = yield* translatedBlocks(qmpSocket)
    let last = boot
    const step = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const ms = yield* timed(effect)
        const now = yield* translatedBlocks(qmpSocket)
        if (now.flushes !== boot.flushes) return yield* Effect.fail(new Error("TCG flushed its translations between two counts"))
        const blocks = now.blocks - last.blocks
        last = now
        return { ms, blocks }
      })
    const attach = yield* step(vm.attach)
    const first = yield* step(exec)
    const second = yield* step(exec)
    return { boot: boot.blocks, attach, first, second }
  }))

/** The median of TCG_VMS cold VMs' translated blocks, printed. */
const printTranslatedBlocks = Effect.gen(function*() {
  const tcgDir = yield* benchDir("boot-tcg")
  const counts = yield* Effect.forEach(
    Array.from({ length: TCG_VMS }, (_, i) => `tcg${i}`),
    coldVmBlocks
  ).pipe(Effect.provide(servicesLayer(layerWith({ stateDir: tcgDir, templates: false }), ProgressSilent)))
  const med = (pick: (c: typeof counts[number]) => number) => Math.round(median(counts.map(pick)))
  const bootBlocks = med((c) => c.boot)
  const afterHello = med((c) => c.attach.blocks + c.first.blocks)
  console.log(`  TCG blocks translated in a cold VM (QEMU's info jit, median of ${TCG_VMS}):`)
  console.log(`    up to the agent's hello ${bootBlocks}; attach +${med((c) => c.attach.blocks)} (${med((c) => c.attach.ms)} ms);` +
    ` first true +${med((c) => c.first.blocks)} (${med((c) => c.first.ms)} ms); second true +${med((c) => c.second.blocks)} (${med((c) => c.second.ms)} ms)`)
  console.log(`    attach and the first command translate ${(100 * afterHello / bootBlocks).toFixed(1)} % as many blocks as the whole boot`)
}).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  const n = iterations(10)
  const dir = yield* benchDir("boot")
  const { accel, args: raw } = yield* rawTinyVm(dir, {
    name: "pyro-bench-raw",
    memMib: 1024,
    network: false,
    extraKernelArgs: ["pyro.poweroff_when_ready"]
  })

  // Both boot cold: this measures pyro's own overhead on a boot (bench/start covers templates).
  // pyro runs as a user runs it: the script itself, so its first line (bin/pyro.js) applies.
  const cold = { ...process.env, PYRO_COLD_BOOT: "1" }
  const cli = ["run", "tiny", "--", "true"]
  const plan = planFileFor((yield* PyroConfig).stateDir, { environment: "tiny" }, cold)
  const withoutHeadStart = Effect.zipRight(Effect.sync(() => Fs.rmSync(plan, { force: true })), timeProcess(pyroBin, cli, cold))
  // One untimed round of each warms the page cache (and writes the shape's plan).
  yield* timeProcess("qemu-system-x86_64", raw)
  yield* withoutHeadStart
  yield* timeProcess(pyroBin, cli, cold)
  const rawMs: Array<number> = []
  const cliMs: Array<number> = []
  const noHeadMs: Array<number> = []
  for (let i = 0; i < n; i++) {
    rawMs.push(yield* timeProcess("qemu-system-x86_64", raw))
    cliMs.push(yield* timeProcess(pyroBin, cli, cold))
    // It writes the plan again for the next round's run with a head start.
    noHeadMs.push(yield* withoutHeadStart)
  }

  const ratio = median(cliMs) / median(rawMs)
  console.log(`bench/boot (accelerator ${accel}, ${n} runs each, alternated)`)
  console.log(`  raw QEMU boot-to-exit (same kernel, initramfs, disks)  median ${fmtMs(median(rawMs))}`)
  console.log(`  pyro run tiny -- true (whole CLI, cold)                median ${fmtMs(median(cliMs))}`)
  console.log(`  pyro run tiny -- true, no head start (its plan removed)  median ${fmtMs(median(noHeadMs))}`)
  console.log(`  ratio pyro/raw = ${ratio.toFixed(3)}  (goal <= ${GOAL}: ${ratio <= GOAL ? "met" : "not met"})`)
  console.log(`  with / without the head start = ${(median(cliMs) / median(noHeadMs)).toFixed(3)}; without / raw = ${(median(noHeadMs) / median(rawMs)).toFixed(3)}`)

  // Where the guest's time after its hello goes: code run for the first time in this VM.
  // Only under TCG (KVM translates nothing), and never at the cost of the summary line.
  if (accel !== "tcg") console.log(`  TCG blocks: not counted (accelerator ${accel})`)
  else yield* printTranslatedBlocks.pipe(
    Effect.timeoutFail({ duration: TCG_SECTION_TIMEOUT, onTimeout: () => new Error(`not done within ${TCG_SECTION_TIMEOUT}`) }),
    Effect.catchAllCause((cause) => Effect.sync(() => console.log(`  TCG blocks: not counted (${Cause.pretty(cause).split("\n")[0]})`)))
  )
  // Last, for scripts.
  console.log(`boot: boot_raw=${ratio.toFixed(3)}`)
})

runBench(program.pipe(Effect.scoped, Effect.provide(services)))
