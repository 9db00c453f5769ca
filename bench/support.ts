/** Shared by the benchmarks: the app's services, timing, and medians. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { EnvironmentStore } from "../src/services/EnvironmentStore.js"
import { KernelStore } from "../src/services/KernelStore.js"
import { Vmm } from "../src/services/Vmm.js"
import { hostTscKhz } from "../src/vm/accel.js"
import { qemuArgs } from "../src/vm/qemu/args.js"
import { qemuExecutable, qemusUsing } from "../src/vm/vmmIdentity.js"
import { appLayer } from "../src/layers/App.js"
import { ProgressSilent } from "../src/services/Progress.js"

export const repoRoot = Path.resolve(import.meta.dirname, "..")
export const pyroBin = Path.join(repoRoot, "bin", "pyro.js")

export const services = appLayer(ProgressSilent)

export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** p50 of `n` runs of `effect` in ms, after one warm-up. */
export const p50 = <E, R>(n: number, effect: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    yield* effect
    const times: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      yield* effect
      times.push(performance.now() - t)
    }
    return median(times)
  })

export const iterations = (fallback: number) => Number(process.env.BENCH_N ?? fallback)

/** `effect`'s wall time in ms. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([d]) => Duration.toMillis(d))

/** Wall time of a process from spawn to exit, in ms; fails unless it exits 0. */
export const timeProcess = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  Effect.async<number, Error>((resume) => {
    const started = performance.now()
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], env })
    let stderr = ""
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("error", (e) => resume(Effect.fail(e)))
    child.on("exit", (code, signal) => {
      const ms = performance.now() - started
      resume(code === 0 ? Effect.succeed(ms) : Effect.fail(new Error(`${command} exited ${code ?? signal}: ${stderr.slice(-500)}`)))
    })
  })

export const fmtMs = (ms: number) => `${(ms / 1000).toFixed(3)} s`

/**
 * A scratch directory for one benchmark, removed however the benchmark ends;
 * any QEMU whose command line names it is killed first, so a failed run
 * leaves no VM behind (workspace VMs are detached from their creator).
 */
export const benchDir = (label: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `pyro-bench-${label}-`))),
    (dir) =>
      Effect.sync(() => {
        for (const { pid } of qemusUsing(dir, qemuExecutable("qemu-system-x86_64"))) {
          try {
            process.kill(pid, "SIGKILL")
          } catch {
            // already gone
          }
        }
        Fs.rmSync(dir, { recursive: true, force: true })
      })
  )

/**
 * Run a benchmark program; a failure is printed and exits non-zero. Ctrl-C
 * or SIGTERM interrupts it, so its scopes close and its VMs die with it.
 */
export const runBench = <A, E>(program: Effect.Effect<A, E>) => NodeRuntime.runMain(program)

/**
 * QEMU's arguments for a raw VM of the tiny environment, booted as pyro boots
 * one (same kernel, initramfs, devices and command line) from files in `dir`:
 * the baselines bench/boot and bench/network measure pyro against. Returns the
 * scratch disk's path too (1 GiB, sparse; unformatted).
 */
export const rawTinyVm = (dir: string, options: {
  readonly name: string
  readonly memMib: number
  readonly network: boolean
  readonly extraKernelArgs?: ReadonlyArray<string>
}) =>
  Effect.gen(function*() {
    const assets = yield* (yield* KernelStore).ensure
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    const { accel } = yield* Vmm
    Fs.mkdirSync(dir, { recursive: true })
    const scratch = Path.join(dir, "scratch.ext4")
    Fs.writeFileSync(scratch, "")
    Fs.truncateSync(scratch, 1024 * 1024 * 1024)
    const args = qemuArgs({
      name: options.name,
      accel: accel.accel,
      vcpus: 1,
      memMib: options.memMib,
      kernel: assets.kernel,
      initrd: assets.initrd,
      rootImage: env.rootImage,
      scratchImage: scratch,
      channelSocket: Path.join(dir, "channel.sock"),
      qmpSocket: Path.join(dir, "qmp.sock"),
      consoleLog: Path.join(dir, "console.log"),
      network: options.network,
      tscKhz: yield* hostTscKhz,
      ...(options.extraKernelArgs ? { extraKernelArgs: options.extraKernelArgs } : {})
    })
    return { args, scratch, accel: accel.accel }
  })
