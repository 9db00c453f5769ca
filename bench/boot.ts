/**
 * bench/boot: `pyro run tiny -- true` booting cold (PYRO_COLD_BOOT=1), the whole
 * CLI from spawn to exit, against a raw QEMU boot-to-exit of the same kernel, initramfs, disks and command line
 * (the agent powers off as soon as it is ready). Alternated in one run; prints
 * medians and their ratio. Goal: ratio <= 1.15.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { EnvironmentStore } from "../src/services/EnvironmentStore.js"
import { KernelStore } from "../src/services/KernelStore.js"
import { Vmm } from "../src/services/Vmm.js"
import { hostTscKhz } from "../src/vm/accel.js"
import { qemuArgs } from "../src/vm/qemu/args.js"
import { benchDir, fmtMs, iterations, median, pyroBin, runBench, services, timeProcess } from "./support.js"

const GOAL = 1.15

const program = Effect.gen(function*() {
  const n = iterations(10)
  const assets = yield* (yield* KernelStore).ensure
  const env = yield* (yield* EnvironmentStore).ensure("tiny")
  const { accel } = yield* Vmm
  const dir = yield* benchDir("boot")
  const scratch = Path.join(dir, "scratch.ext4")
  Fs.writeFileSync(scratch, "")
  Fs.truncateSync(scratch, 1024 * 1024 * 1024)
  const raw = qemuArgs({
    name: "pyro-bench-raw",
    accel: accel.accel,
    vcpus: 1,
    memMib: 1024,
    kernel: assets.kernel,
    initrd: assets.initrd,
    rootImage: env.rootImage,
    scratchImage: scratch,
    channelSocket: Path.join(dir, "channel.sock"),
    qmpSocket: Path.join(dir, "qmp.sock"),
    consoleLog: Path.join(dir, "console.log"),
    network: false,
    tscKhz: yield* hostTscKhz,
    extraKernelArgs: ["pyro.poweroff_when_ready"]
  })

  // Both boot cold: this measures pyro's own overhead on a boot (bench/start covers templates).
  const cold = { ...process.env, PYRO_COLD_BOOT: "1" }
  // One untimed round of each warms the page cache.
  yield* timeProcess("qemu-system-x86_64", raw)
  yield* timeProcess(process.execPath, [pyroBin, "run", "tiny", "--", "true"], cold)
  const rawMs: Array<number> = []
  const cliMs: Array<number> = []
  for (let i = 0; i < n; i++) {
    rawMs.push(yield* timeProcess("qemu-system-x86_64", raw))
    cliMs.push(yield* timeProcess(process.execPath, [pyroBin, "run", "tiny", "--", "true"], cold))
  }

  const ratio = median(cliMs) / median(rawMs)
  console.log(`bench/boot (accelerator ${accel.accel}, ${n} runs each, alternated)`)
  console.log(`  raw QEMU boot-to-exit (same kernel, initramfs, disks)  median ${fmtMs(median(rawMs))}`)
  console.log(`  pyro run tiny -- true (whole CLI, cold)                median ${fmtMs(median(cliMs))}`)
  console.log(`  ratio pyro/raw = ${ratio.toFixed(3)}  (goal <= ${GOAL}: ${ratio <= GOAL ? "met" : "not met"})`)
})

runBench(program.pipe(Effect.scoped, Effect.provide(services)))
