/**
 * bench/boot: `pyro run tiny -- true` booting cold (PYRO_COLD_BOOT=1), the whole
 * CLI from spawn to exit, against a raw QEMU boot-to-exit of the same kernel, initramfs, disks and command line
 * (the agent powers off as soon as it is ready). Alternated in one run; prints
 * medians and their ratio. Goal: ratio <= 1.15. A third series runs the CLI without
 * its head start (the shape's plan removed before each run), for what the head start
 * saves. The last line, for scripts, is `boot: boot_raw=B`.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { PyroConfig } from "../src/services/PyroConfig.js"
import { planFileFor } from "../src/vm/headStart/recipe.js"
import { benchDir, fmtMs, iterations, median, pyroBin, rawTinyVm, runBench, services, timeProcess } from "./support.js"

const GOAL = 1.15

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
  // Last, for scripts.
  console.log(`boot: boot_raw=${ratio.toFixed(3)}`)
})

runBench(program.pipe(Effect.scoped, Effect.provide(services)))
