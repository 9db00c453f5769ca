/**
 * Running a host tool (mkfs.ext4, dpkg-deb, apt-get, musl-gcc) to completion,
 * with a typed failure that carries the tail of what it printed.
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { caEnvForPrograms } from "./extraCaCerts.js"

const OUTPUT_LIMIT = 64 * 1024

export class HostCommandFailed extends Data.TaggedError("HostCommandFailed")<{
  readonly command: string
  readonly exitCode: number | undefined
  readonly output: string
}> {
  override get message() {
    const how = this.exitCode === undefined ? "could not run" : `exited with status ${this.exitCode}`
    const tail = this.output.trim().split("\n").slice(-8).join("\n")
    return `${this.command} ${how}${tail ? `:\n${tail}` : ""}`
  }
}

export interface HostCommandResult {
  readonly stdout: string
  readonly stderr: string
}

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.runFold("", (acc, s) => (acc + s).slice(-OUTPUT_LIMIT)),
    Effect.orElseSucceed(() => "")
  )

/** All of stdout, for a command whose whole answer is needed (a file list); undefined past `limit` characters. */
const collectWhole = (stream: Stream.Stream<Uint8Array, unknown>, limit: number) =>
  stream.pipe(
    Stream.decodeText(),
    // Read to the end even past the limit, so the command is never left blocked on a full pipe.
    Stream.runFold({ text: "", over: false }, (acc, s) =>
      acc.over || acc.text.length + s.length > limit ? { text: "", over: true } : { text: acc.text + s, over: false }),
    Effect.map((acc) => (acc.over ? undefined : acc.text)),
    Effect.orElseSucceed(() => "")
  )

/** Like collect, also handing each complete line to `onLine` (progress from long builds). */
const collectLines = <R>(stream: Stream.Stream<Uint8Array, unknown>, onLine: (line: string) => Effect.Effect<void, never, R>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.tap(onLine),
    Stream.runFold("", (acc, line) => (acc + line + "\n").slice(-OUTPUT_LIMIT)),
    Effect.orElseSucceed(() => "")
  )

export const runHostCommand = <R = never>(
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string
    readonly env?: Record<string, string>
    /** Called with each line the command prints on stderr, as it prints it. */
    readonly onStderrLine?: (line: string) => Effect.Effect<void, never, R>
    /**
     * Keep all of stdout, up to this many characters (a command printing more
     * fails); without it, only its last 64 KiB are kept.
     */
    readonly maxStdout?: number
  } = {}
): Effect.Effect<HostCommandResult, HostCommandFailed, CommandExecutor.CommandExecutor | R> => {
  let cmd = Command.make(command, ...args)
  if (options.cwd) cmd = Command.workingDirectory(cmd, options.cwd)
  // The operator's extra CAs, which bin/pyro.js's first line kept from Node, go back to the programs pyro runs.
  cmd = Command.env(cmd, { ...caEnvForPrograms(), ...options.env })
  const label = [command, ...args].join(" ")
  return Effect.scoped(Effect.gen(function*() {
    const proc = yield* Command.start(cmd)
    const stderrText = options.onStderrLine ? collectLines(proc.stderr, options.onStderrLine) : collect(proc.stderr)
    const stdoutText = options.maxStdout === undefined ? collect(proc.stdout) : collectWhole(proc.stdout, options.maxStdout)
    const [stdout, stderr, exitCode] = yield* Effect.all([stdoutText, stderrText, proc.exitCode], {
      concurrency: 3
    })
    if (exitCode !== 0) {
      return yield* new HostCommandFailed({ command: label, exitCode, output: stderr || stdout || "" })
    }
    if (stdout === undefined) {
      return yield* new HostCommandFailed({ command: label, exitCode, output: `printed more than ${options.maxStdout} characters` })
    }
    return { stdout, stderr }
  })).pipe(
    Effect.catchTag("SystemError", "BadArgument", (e) =>
      Effect.fail(new HostCommandFailed({ command: label, exitCode: undefined, output: e.message })))
  )
}
