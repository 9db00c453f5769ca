/**
 * Reading a stopped workspace's disk image offline with e2fsprogs' `debugfs`
 * (read-only: it is never opened with -w, never mounted). Every request names
 * inodes by number (`ls -p <12>`, `inode_dump <14>`, `cat <14>`), never by a
 * name from the disk, so nothing the guest wrote is ever parsed as a command.
 *
 * The image is the guest's: every name, number and byte in debugfs's answer
 * is bounded and checked (./answer.ts parses it), and a run whose answer
 * outgrows its bound, or that takes too long, is killed.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"

/** How long one debugfs run may take (a recursive listing of a large tree is one run per level). */
const RUN_TIMEOUT_MS = 120_000
const STDERR_BYTES = 4096

export interface DebugfsRun {
  readonly stdout: Buffer
  /** Stdout reached `maxStdout` and the run was cut there. */
  readonly cut: boolean
  readonly stderr: string
  readonly exitCode: number | null
}

export class DebugfsFailed extends Data.TaggedError("DebugfsFailed")<{ readonly detail: string }> {}

/**
 * Run `requests` (one per line, through -f -) against `image`, holding at most
 * `maxStdout` bytes of the answer; with `cutAtMax` a longer answer ends the run
 * there (a bounded read), else it is refused.
 */
export const runDebugfs = (
  image: string,
  requests: ReadonlyArray<string>,
  maxStdout: number,
  cutAtMax = false
): Effect.Effect<DebugfsRun, DebugfsFailed> =>
  Effect.async<DebugfsRun, DebugfsFailed>((resume) => {
    const child = ChildProcess.spawn("debugfs", ["-f", "-", image], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", LC_ALL: "C" }
    })
    const chunks: Array<Buffer> = []
    let held = 0
    let cut = false
    let stderr = ""
    let failure: string | undefined
    const timer = setTimeout(() => {
      failure = `debugfs took longer than ${RUN_TIMEOUT_MS / 1000} s`
      child.kill("SIGKILL")
    }, RUN_TIMEOUT_MS)
    child.stdout.on("data", (chunk: Buffer) => {
      if (cut || failure) return
      const room = maxStdout - held
      if (chunk.byteLength > room) {
        chunks.push(chunk.subarray(0, room))
        held = maxStdout
        if (cutAtMax) cut = true
        else failure = `its answer is larger than ${maxStdout} bytes`
        child.kill("SIGKILL")
        return
      }
      chunks.push(chunk)
      held += chunk.byteLength
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("latin1")).slice(-STDERR_BYTES)
    })
    child.once("error", (e) => {
      clearTimeout(timer)
      resume(Effect.fail(new DebugfsFailed({ detail: `cannot run debugfs: ${e.message}` })))
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      if (failure) return resume(Effect.fail(new DebugfsFailed({ detail: failure })))
      resume(Effect.succeed({ stdout: Buffer.concat(chunks), cut, stderr, exitCode: code }))
    })
    // A reader that stopped early makes this fail with EPIPE: harmless.
    child.stdin.on("error", () => {})
    child.stdin.end(requests.map((r) => `${r}\n`).join(""))
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** The last line debugfs complained with, cleaned (it may quote the disk's bytes). */
export const complaintOf = (stderr: string) =>
  (stderr.trim().split("\n").filter((l) => !/^debugfs \d/.test(l)).at(-1) ?? "")
    .replace(/[^\x20-\x7e]/g, "?")
    .slice(0, 200)
