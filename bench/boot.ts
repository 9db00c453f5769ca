/**
 * bench/boot: `pyro run tiny -- true` booting cold (PYRO_COLD_BOOT=1), the whole
 * CLI from spawn to exit, against a raw QEMU boot-to-exit of the same kernel, initramfs, disks and command line
 * (the agent powers off as soon as it is ready). Alternated in one run; prints
 * medians and their ratio. Goal: ratio <= 1.15. The last line, for scripts, is
 * `boot: boot_raw=B`.
 */
import * as Effect from "effect/Effect"
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
  // One untimed round of each warms the page cache.
  yield* timeProcess("qemu-system-x86_64", raw)
  yield* timeProcess(pyroBin, ["run", "tiny", "--", "true"], cold)
  const rawMs: Array<number> = []
  const cliMs: Array<number> = []
  for (let i = 0; i < n; i++) {
    rawMs.push(yield* timeProcess("qemu-system-x86_64", raw))
    cliMs.push(yield* timeProcess(pyroBin, ["run", "tiny", "--", "true"], cold))
  }

  const ratio = median(cliMs) / median(rawMs)
  console.log(`bench/boot (accelerator ${accel}, ${n} runs each, alternated)`)
  console.log(`  raw QEMU boot-to-exit (same kernel, initramfs, disks)  median ${fmtMs(median(rawMs))}`)
  console.log(`  pyro run tiny -- true (whole CLI, cold)                median ${fmtMs(median(cliMs))}`)
  console.log(`  ratio pyro/raw = ${ratio.toFixed(3)}  (goal <= ${GOAL}: ${ratio <= GOAL ? "met" : "not met"})`)
  // Last, for scripts.
  console.log(`boot: boot_raw=${ratio.toFixed(3)}`)
})

runBench(program.pipe(Effect.scoped, Effect.provide(services)))
