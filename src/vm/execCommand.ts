/**
 * Running one command over a guest connection and shaping the outcome the way
 * every operation reports it: exit code 124 and a stderr line on timeout, 127
 * for a command that does not exist, output capped in memory while streamed
 * to an optional sink as it arrives.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Command, ExecutionMode } from "../contract/common.js"
import { GuestChannelError } from "./errors.js"
import { Caller } from "../services/Caller.js"
import { budgetBytes, CappedOutput, evenBudget, type OutputBudget, shapeCaptured, TAIL_BYTES } from "./output.js"
import type { GuestConnection } from "./protocol/mux.js"

/** Where a one-shot run's command runs. */
export const WORKDIR = "/workspace"

export const GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

export const DEFAULT_GUEST_ENV: ReadonlyArray<readonly [string, string]> = [
  ["PATH", GUEST_PATH],
  ["HOME", "/root"],
  ["USER", "root"],
  ["LOGNAME", "root"],
  ["LANG", "C.UTF-8"],
  ["TERM", "dumb"]
]

/** The agent enforces the timeout; the host gives up this much later if it never hears back. */
const HOST_GRACE_MS = 15_000
const TIMEOUT_EXIT_CODE = 124

export type OutputSink = (fd: 1 | 2, bytes: Uint8Array) => Effect.Effect<void>

export interface CommandOutcome {
  readonly stdout: CappedOutput
  readonly stderr: CappedOutput
  readonly exitCode: number
  readonly timedOut: boolean
  readonly durationMs: number
}

export const commandArgv = (command: Command): ReadonlyArray<string> =>
  typeof command === "string" ? ["/bin/sh", "-c", command] : command

export const timeoutMessage = (seconds: number) => `command timed out after ${seconds}s\n`

/**
 * A rewrite of a command's output as it arrives (a workspace's secret
 * redaction), one instance per stream: `push` returns what may be shown now,
 * `end` what it still held.
 */
export interface OutputFilter {
  readonly stream: () => { readonly push: (chunk: Uint8Array) => Uint8Array; readonly end: () => Uint8Array }
}

export const runCommand = (
  connection: GuestConnection,
  options: {
    readonly command: Command
    readonly cwd: string
    readonly timeoutSeconds: number
    readonly maxOutputBytes: number
    readonly env?: ReadonlyArray<readonly [string, string]>
    readonly onOutput?: OutputSink
    /** Applied to stdout and stderr before anything else sees them (result, sink, kept output). */
    readonly filter?: OutputFilter
    /** Bytes for the command's stdin, streamed with backpressure; without it stdin is /dev/null. */
    readonly stdin?: Stream.Stream<Uint8Array>
  }
): Effect.Effect<CommandOutcome, GuestChannelError> =>
  Effect.gen(function*() {
    const started = Date.now()
    const stdout = new CappedOutput(options.maxOutputBytes)
    const stderr = new CappedOutput(options.maxOutputBytes)
    const sink = options.onOutput ?? (() => Effect.void)
    let stderrAtLineStart = true
    const filters = options.filter ? { 1: options.filter.stream(), 2: options.filter.stream() } : undefined
    const show = (fd: 1 | 2, bytes: Uint8Array) => {
      if (bytes.byteLength === 0) return Effect.void
      if (fd === 2 && bytes.byteLength > 0) stderrAtLineStart = bytes[bytes.byteLength - 1] === 0x0a
      ;(fd === 1 ? stdout : stderr).push(bytes)
      return sink(fd, bytes)
    }
    const emit = (fd: 1 | 2, bytes: Uint8Array) => show(fd, filters ? filters[fd].push(bytes) : bytes)
    const argv = commandArgv(options.command)
    let exitCode: number | undefined
    let timedOut = false

    const events = connection.exec({
      argv,
      env: options.env ?? DEFAULT_GUEST_ENV,
      cwd: options.cwd,
      timeoutMs: options.timeoutSeconds * 1000,
      stdin: options.stdin !== undefined
    }, options.stdin)
    const finished = yield* Stream.runForEach(events, (event) => {
      switch (event._tag) {
        case "Output":
          return emit(event.fd, event.bytes)
        case "Exit":
          exitCode = event.exitCode
          timedOut = event.timedOut
          return Effect.void
        case "GuestError": {
          // The command never started: report it the way a shell would.
          const notFound = event.stage === "exec" && event.errno === 2
          exitCode = notFound ? 127 : 126
          const what = notFound ? "command not found" : event.message
          return emit(2, new TextEncoder().encode(`pyro: ${argv[0]}: ${what}\n`))
        }
      }
    }).pipe(Effect.timeoutOption(options.timeoutSeconds * 1000 + HOST_GRACE_MS))
    if (filters) {
      yield* show(1, filters[1].end())
      yield* show(2, filters[2].end())
    }

    if (Option.isNone(finished) || exitCode === undefined) {
      return yield* new GuestChannelError({
        reason: "Unresponsive",
        detail: `the guest did not report the end of the command within ${options.timeoutSeconds}s plus ${HOST_GRACE_MS / 1000}s`
      })
    }
    if (timedOut) {
      exitCode = TIMEOUT_EXIT_CODE
      const line = timeoutMessage(options.timeoutSeconds)
      yield* show(2, new TextEncoder().encode(stderrAtLineStart ? line : `\n${line}`))
    }
    return { stdout, stderr, exitCode, timedOut, durationMs: Date.now() - started }
  })

/**
 * Bytes of each output stream a result carries: for a tool caller (a model)
 * the operator's budget, head and tail; for the operator (the CLI) everything
 * held in memory.
 */
export const resultBudget = (config: { readonly maxOutputBytes: number; readonly outputBudgetBytes: number }) =>
  Effect.map(Caller, (caller): OutputBudget =>
    caller.kind === "operator" ? { head: config.maxOutputBytes, tail: TAIL_BYTES } : evenBudget(config.outputBudgetBytes))

/** Where the whole of a stream a result cut short was kept, to name in its marker. */
export interface KeptAt {
  readonly stdout?: string
  readonly stderr?: string
}

/** The result fields every command reports (vm_run, vm_exec, workspace_exec), from its outcome. */
export const outcomeFields = (outcome: CommandOutcome, mode: ExecutionMode, budget: OutputBudget, keptAt: KeptAt = {}) => {
  const stdout = shapeCaptured("stdout", outcome.stdout, budget, keptAt.stdout)
  const stderr = shapeCaptured("stderr", outcome.stderr, budget, keptAt.stderr)
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    exit_code: outcome.exitCode,
    duration_ms: outcome.durationMs,
    execution_mode: mode,
    timed_out: outcome.timedOut,
    stdout_truncated: stdout.truncated,
    stderr_truncated: stderr.truncated,
    stdout_bytes: outcome.stdout.total,
    stderr_bytes: outcome.stderr.total
  }
}

/** A stream is longer than a text of `budget` carries whole. */
export const exceeds = (outcome: CommandOutcome, budget: OutputBudget) =>
  outcome.stdout.total > budgetBytes(budget) || outcome.stderr.total > budgetBytes(budget)
