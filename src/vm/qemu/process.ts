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
import * as Fs from "node:fs"
import { tool } from "../../host/systemTools.js"
import { BootError } from "../errors.js"
import type { HeadStart } from "../headStart/recipe.js"
import { isAlive, type ProcessIdentity } from "../procfs.js"
import { EXIT_WAIT_MS, killGroup, STDERR_TAIL_BYTES } from "./processBasics.js"

// The sweep, the claim and the spares kill QEMUs through this module.
export { killGroup } from "./processBasics.js"

export interface ProcessExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface VmmProcess {
  readonly pid: number
  /** Completes when the process has exited. */
  readonly exited: Effect.Effect<ProcessExit>
  readonly isRunning: Effect.Effect<boolean>
  /**
   * An ephemeral VMM killed now, if still running; its scope's end still waits for its
   * exit. For a one-shot run whose command is over: QEMU's exit (~20 ms of freeing its
   * memory) then overlaps the rest of the run's end.
   */
  readonly killNow: Effect.Effect<void>
  /**
   * Killed now and waited for (EXIT_WAIT_MS at most), whatever its lifetime: a detached VM
   * whose boot failed, before a cold boot takes its disk (QEMU locks it while it lives).
   */
  readonly abandon: Effect.Effect<void>
  /** The last few KiB QEMU wrote on stderr. */
  readonly stderrTail: Effect.Effect<string>
}

export const describeExit = (exit: ProcessExit) =>
  exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`

/**
 * `ephemeral`: the process dies with the scope and with us (parent-death
 * signal). `detached`: it outlives the scope (persistent VMs, stopped
 * explicitly) and dies with us only if `dieWithParent` (VMs do, workspaces do
 * not); its stderr goes to `stderrFile` so that no pipe to us is left to break.
 */
export type VmmLifetime =
  | { readonly _tag: "ephemeral" }
  | { readonly _tag: "detached"; readonly stderrFile: string; readonly dieWithParent: boolean }

const readTail = (path: string) => {
  try {
    return Fs.readFileSync(path, "utf8").slice(-STDERR_TAIL_BYTES)
  } catch {
    return ""
  }
}

/** The command that runs QEMU's `argv` for this lifetime. */
export const vmmCommand = (argv: ReadonlyArray<string>, lifetime: VmmLifetime): ReadonlyArray<string> =>
  lifetime._tag === "ephemeral" || lifetime.dieWithParent ? [tool("setpriv"), "--pdeathsig", "KILL", "--", ...argv] : argv

/**
 * An ephemeral VMM's end: killed if still running (not reaped while it runs, so its
 * pid is still ours), then, with its scope, waited for.
 */
const ephemeralEnd = (exited: Deferred.Deferred<ProcessExit>) => {
  const killNow = (pid: number) =>
    Effect.flatMap(Deferred.isDone(exited), (done) => done ? Effect.void : Effect.sync(() => killGroup(pid, "SIGKILL")))
  return {
    killNow,
    release: (pid: number) => Effect.zipRight(killNow(pid), Deferred.await(exited).pipe(Effect.timeout(EXIT_WAIT_MS), Effect.ignore))
  }
}

export const spawnVmm = (
  argv: ReadonlyArray<string>,
  lifetime: VmmLifetime
): Effect.Effect<VmmProcess, BootError, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<ProcessExit>()
    let stderr = ""
    const detached = lifetime._tag === "detached"
    const [command, ...args] = vmmCommand(argv, lifetime)
    const end = ephemeralEnd(exited)
    const child = yield* Effect.acquireRelease(
      Effect.async<ChildProcess.ChildProcess, BootError>((resume) => {
        let stderrFd: number | undefined
        if (detached) stderrFd = Fs.openSync(lifetime.stderrFile, "a", 0o600)
        const child = ChildProcess.spawn(command!, args, {
          stdio: ["ignore", "ignore", stderrFd ?? "pipe"],
          detached: true
        })
        if (stderrFd !== undefined) Fs.closeSync(stderrFd)
        child.stderr?.setEncoding("utf8")
        child.stderr?.on("data", (chunk: string) => {
          stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES)
        })
        child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Effect.succeed({ code, signal })))
        child.once("error", (err) =>
          resume(Effect.fail(new BootError({ stage: "Spawn", detail: `cannot start ${command}: ${err.message}` })))
        )
        child.once("spawn", () => resume(Effect.succeed(child)))
      }),
      (child) =>
        detached
          // Still reaped by Node when it exits, but no longer keeps us alive.
          ? Effect.sync(() => child.unref())
          : end.release(child.pid!)
    )
    return {
      pid: child.pid!,
      exited: Deferred.await(exited),
      isRunning: Effect.map(Deferred.isDone(exited), (done) => !done),
      // A detached VMM outlives the scope: its owner stops it.
      killNow: detached ? Effect.void : end.killNow(child.pid!),
      abandon: end.release(child.pid!),
      stderrTail: Effect.sync(() => (detached ? readTail(lifetime.stderrFile) : stderr))
    }
  })

/**
 * An ephemeral QEMU started before the CLI loaded (a head start, src/entrypoints/headStart.ts),
 * taken over as if spawnVmm had started it: in one step, so that from then on it ends with
 * the scope. None if the head start has nothing (left) to take.
 */
export const adoptVmm = (headStart: HeadStart) =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<ProcessExit>()
    const end = ephemeralEnd(exited)
    const started = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const taken = headStart.adopt()
        taken?.exited.then((exit) => Deferred.unsafeDone(exited, Effect.succeed(exit)))
        return taken
      }),
      (taken) => (taken ? end.release(taken.pid) : Effect.void)
    )
    if (started === undefined) return undefined
    const proc: VmmProcess = {
      pid: started.pid,
      exited: Deferred.await(exited),
      isRunning: Effect.map(Deferred.isDone(exited), (done) => !done),
      killNow: end.killNow(started.pid),
      abandon: end.release(started.pid),
      stderrTail: Effect.sync(started.stderrTail)
    }
    return { started, proc }
  })

/** Wait until a process is gone (exited or a zombie), for at most `timeoutMs`; true if it is. */
export const awaitGone = (who: ProcessIdentity, timeoutMs: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (isAlive(who) && Date.now() < deadline) yield* Effect.sleep("20 millis")
    return !isAlive(who)
  })

/**
 * Kill a VMM we no longer hold a handle on (a detached VM, one left by a boot
 * cut short) and its process group, once proved to be that very process;
 * true if it was running.
 */
export const killVmm = (who: ProcessIdentity | null | undefined) =>
  Effect.gen(function*() {
    if (!who || !isAlive(who)) return false
    killGroup(who.pid, "SIGKILL")
    yield* awaitGone(who, EXIT_WAIT_MS)
    return true
  })
