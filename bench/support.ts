/** Shared by the benchmarks: the app's services, timing, and medians. */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
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

export const iterations = (fallback: number) => Number(process.env.BENCH_N ?? fallback)

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

/** Run a benchmark program; a failure is printed and exits non-zero. */
export const runBench = <A, E>(program: Effect.Effect<A, E>) =>
  Effect.runPromise(program).catch((e) => {
    console.error(e)
    process.exit(1)
  })
