/**
 * The VMM process as a scoped resource. Spawned in its own process group so
 * release can kill QEMU and anything it started; for ephemeral VMs through
 * `setpriv --pdeathsig KILL`, so the kernel kills QEMU if this process dies
 * without running its finalizers (kill -9 included).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import { BootError } from "../errors.js"

export interface ProcessExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface VmmProcess {
  readonly pid: number
  /** Completes when the process has exited. */
  readonly exited: Effect.Effect<ProcessExit>
  readonly isRunning: Effect.Effect<boolean>
  /** The last few KiB QEMU wrote on stderr. */
  readonly stderrTail: Effect.Effect<string>
}

const STDERR_TAIL_BYTES = 8 * 1024
const EXIT_WAIT_MS = 5_000

export const describeExit = (exit: ProcessExit) =>
  exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`

const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: already gone.
  }
}

export const spawnVmm = (
  argv: ReadonlyArray<string>,
  options: { readonly dieWithParent: boolean }
): Effect.Effect<VmmProcess, BootError, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<ProcessExit>()
    let stderr = ""
    const [command, ...args] = options.dieWithParent ? ["setpriv", "--pdeathsig", "KILL", "--", ...argv] : argv
    const child = yield* Effect.acquireRelease(
      Effect.async<ChildProcess.ChildProcess, BootError>((resume) => {
        const child = ChildProcess.spawn(command!, args, { stdio: ["ignore", "ignore", "pipe"], detached: true })
        child.stderr!.setEncoding("utf8")
        child.stderr!.on("data", (chunk: string) => {
          stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)
        })
        child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Effect.succeed({ code, signal })))
        child.once("error", (err) =>
          resume(Effect.fail(new BootError({ stage: "Spawn", detail: `cannot start ${command}: ${err.message}` })))
        )
        child.once("spawn", () => resume(Effect.succeed(child)))
      }),
      (child) =>
        Effect.gen(function*() {
          if (!(yield* Deferred.isDone(exited))) killGroup(child.pid!, "SIGKILL")
          yield* Deferred.await(exited).pipe(Effect.timeout(EXIT_WAIT_MS), Effect.ignore)
        })
    )
    return {
      pid: child.pid!,
      exited: Deferred.await(exited),
      isRunning: Effect.map(Deferred.isDone(exited), (done) => !done),
      stderrTail: Effect.sync(() => stderr)
    }
  })
