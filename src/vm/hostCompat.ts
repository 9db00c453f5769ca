/**
 * allow_host_compat: when this host cannot run guests at all and the operator
 * allowed it, the command runs on the host itself, in a fresh temporary
 * directory, with the same timeout, exit-code and output-cap rules as in a
 * guest. There is no isolation; results say `execution_mode: "host_compat"`.
 * The command gets a minimal environment of its own, never pyro's (which may
 * hold registry passwords and the operator's API keys).
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Command } from "../contract/common.js"
import { commandArgv, type CommandOutcome, type OutputSink, timeoutMessage } from "./execCommand.js"
import { CappedOutput } from "./output.js"

/** Everything a host-compat command sees of the environment: no variable of pyro's own process. */
export const hostCompatEnv = (cwd: string): Record<string, string> => ({
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: cwd,
  TMPDIR: cwd,
  PWD: cwd,
  LANG: "C.UTF-8",
  TERM: "dumb"
})

export const runOnHost = (options: {
  readonly command: Command
  readonly timeoutSeconds: number
  readonly maxOutputBytes: number
  readonly onOutput?: OutputSink
}): Effect.Effect<CommandOutcome> =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-host-compat-"))),
    (cwd) =>
      Effect.async<CommandOutcome>((resume) => {
        const started = Date.now()
        const stdout = new CappedOutput(options.maxOutputBytes)
        const stderr = new CappedOutput(options.maxOutputBytes)
        const sink = options.onOutput ?? (() => Effect.void)
        const [file, ...args] = commandArgv(options.command)
        const child = ChildProcess.spawn(file!, args, {
          cwd,
          env: hostCompatEnv(cwd),
          detached: true,
          stdio: ["ignore", "pipe", "pipe"]
        })
        const killGroup = () => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            // gone
          }
        }
        let timedOut = false
        const timer = setTimeout(() => {
          timedOut = true
          killGroup()
        }, options.timeoutSeconds * 1000)
        const take = (fd: 1 | 2, out: CappedOutput) => (chunk: Buffer) => {
          out.push(chunk)
          Effect.runFork(sink(fd, chunk))
        }
        child.stdout!.on("data", take(1, stdout))
        child.stderr!.on("data", take(2, stderr))
        const finish = (exitCode: number) => {
          clearTimeout(timer)
          if (timedOut) stderr.push(Buffer.from(timeoutMessage(options.timeoutSeconds)))
          resume(Effect.succeed({ stdout, stderr, exitCode: timedOut ? 124 : exitCode, timedOut, durationMs: Date.now() - started }))
        }
        child.once("error", (err) => {
          stderr.push(Buffer.from(`pyro: ${file}: ${err.message}\n`))
          finish((err as NodeJS.ErrnoException).code === "ENOENT" ? 127 : 126)
        })
        child.once("close", (code, signal) => finish(code ?? (signal ? 128 + (Os.constants.signals[signal] ?? 0) : 1)))
        return Effect.sync(() => {
          clearTimeout(timer)
          killGroup()
        })
      }),
    (cwd) => Effect.sync(() => Fs.rmSync(cwd, { recursive: true, force: true }))
  )
