/** `pyro`: the command-line entrypoint. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { EXIT_INTERRUPTED, EXIT_RUNTIME_FAILURE, EXIT_USAGE, ExitCode } from "../cli/exitCode.js"
import { protectForcedArgs } from "../cli/forcedArgs.js"
import { cli } from "../cli/main.js"
import { writeStderr } from "../cli/output.js"
import { Caller, OPERATOR } from "../services/Caller.js"
import { makeStderrProgress } from "../cli/progress.js"
import { allowIdleGc } from "../host/idleGc.js"
import { ansiAllowed, withTerminalConsole } from "../cli/terminal.js"
import { stderrLogger } from "../layers/StderrLogger.js"

const StderrProgress = makeStderrProgress()

// The CLI's idle moments (a guest booting) are its own to collect garbage in.
allowIdleGc()

const isUsage = (e: unknown) => ValidationError.isValidationError(e) || (e as { _tag?: string })?._tag === "UsageError"

const program = Effect.gen(function*() {
  const code = yield* Ref.make(0)
  // The CLI's user is the operator; `pyro mcp serve` runs its clients' calls as tool callers.
  // Each command builds the services it uses when it runs (src/cli/main.ts).
  yield* cli(protectForcedArgs(process.argv), StderrProgress).pipe(
    Effect.provideService(ExitCode, code),
    Effect.provideService(Caller, OPERATOR),
    withTerminalConsole
  )
  return yield* Ref.get(code)
}).pipe(
  // One clear line per failure; @effect/cli has already printed its own usage errors.
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onNone: () => (Cause.isInterruptedOnly(cause) ? Effect.void : writeStderr(`pyro: ${Cause.pretty(cause)}\n`)),
      onSome: (e) =>
        ValidationError.isValidationError(e) ? Effect.void : writeStderr(`pyro: ${(e as Error).message ?? String(e)}\n`)
    })),
  Effect.provide(NodeContext.layer),
  Effect.provide(stderrLogger(ansiAllowed(process.stderr)))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  // Our own logger (stderrLogger) instead of runMain's, which writes to stdout.
  disablePrettyLogger: true,
  // Exit as soon as the command is over, whatever its code: left to drain, Node then tears
  // down its heap and environment, ~12 ms more on every command. First whatever is still
  // queued for stdout and stderr is written (progress lines, help, an MCP client's last
  // reply: not every writer waits for its write), then the process exits; whatever outlives
  // the command (a spare's filler, a port forwarder) is a process of its own.
  teardown: (exit) => {
    const code = exitCodeOf(exit)
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
  }
})

function exitCodeOf(exit: Exit.Exit<unknown, unknown>): number {
  if (Exit.isSuccess(exit)) return typeof exit.value === "number" ? exit.value : 0
  if (Cause.isInterruptedOnly(exit.cause)) return EXIT_INTERRUPTED
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && isUsage(failure.value) ? EXIT_USAGE : EXIT_RUNTIME_FAILURE
}
