/**
 * ANSI escapes only for a person at a terminal: never when the stream is a
 * pipe or a file (scripts, CI logs, an MCP client reading stdout), nor under
 * NO_COLOR (https://no-color.org). @effect/cli renders help and usage errors
 * with colours through the Console service, so the CLI runs on a Console that
 * strips them where they are not wanted.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/** NO_COLOR set to anything but the empty string turns escapes off. */
const noColor = () => (process.env["NO_COLOR"] ?? "") !== ""

export const ansiAllowed = (stream: NodeJS.WriteStream): boolean => stream.isTTY === true && !noColor()

// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g

export const stripAnsi = (text: string) => text.replace(ANSI_ESCAPE, "")

const plain = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? stripAnsi(a) : a))

/** `base` with escapes removed from what goes to a stream that should not have them. */
const plainConsole = (base: Console.Console): Console.Console => {
  const toStdout = ansiAllowed(process.stdout) ? (args: ReadonlyArray<unknown>) => args : plain
  const toStderr = ansiAllowed(process.stderr) ? (args: ReadonlyArray<unknown>) => args : plain
  return {
    ...base,
    log: (...args) => base.log(...toStdout(args)),
    info: (...args) => base.info(...toStdout(args)),
    debug: (...args) => base.debug(...toStdout(args)),
    error: (...args) => base.error(...toStderr(args)),
    warn: (...args) => base.warn(...toStderr(args))
  }
}

/** Run `effect` with a Console that writes escapes only where they belong. */
export const withTerminalConsole = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Console.consoleWith((base) => Console.withConsole(effect, plainConsole(base)))
