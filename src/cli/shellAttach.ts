/**
 * `pyro workspace shell attach WORKSPACE_ID [SHELL_ID]`: a person's terminal
 * on a workspace shell (a new one unless SHELL_ID is given). The local
 * terminal goes raw; keystrokes are written to the shell as they come, its
 * output is polled (a short idle wait) to stdout, and a resize of the local
 * terminal resizes the shell's. Ctrl-] detaches and leaves the shell running.
 * One connection for the whole session, so a keystroke costs one request.
 * CLI only: a tool caller has shell_read and shell_write.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { ShellId } from "../contract/workspace/shells.js"
import { WORKSPACE_PATH, WorkspaceId } from "../contract/workspace/paths.js"
import { WorkspaceManager } from "../services/WorkspaceManager.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import { readShell, resizeShell, writeShell } from "../vm/protocol/shell.js"
import { startShell, withShellErrors } from "../workspace/ops/shells.js"
import { utf8Prefix } from "../workspace/utf8Prefix.js"
import type { Redactor } from "../workspace/secrets/redact.js"
import { redactorFor } from "../workspace/secrets/store.js"
import { writeStderr, writeStdout } from "./output.js"
import { decodeArgs, UsageError } from "./usage.js"

/** Ctrl-]: the byte that detaches, as telnet's and docker's escape. */
const DETACH = 0x1d
/** How long a poll waits for the shell to go quiet: short, so typing feels immediate. */
const POLL_IDLE_MS = 20
const POLL_MAX_BYTES = 64 * 1024

type Event = { readonly _tag: "Input"; readonly bytes: Uint8Array } | { readonly _tag: "Resize" } | { readonly _tag: "Detach" }

const localSize = () => ({
  cols: Math.min(500, Math.max(10, process.stdout.columns ?? 120)),
  rows: Math.min(200, Math.max(5, process.stdout.rows ?? 30))
})

/** The local terminal raw for the scope, and its keystrokes and resizes as events; all undone on every way out. */
const rawTerminal = (events: Queue.Queue<Event>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const onData = (chunk: Buffer) => {
        const at = chunk.indexOf(DETACH)
        if (at < 0) return Queue.unsafeOffer(events, { _tag: "Input", bytes: chunk })
        if (at > 0) Queue.unsafeOffer(events, { _tag: "Input", bytes: chunk.subarray(0, at) })
        Queue.unsafeOffer(events, { _tag: "Detach" })
      }
      const onResize = () => Queue.unsafeOffer(events, { _tag: "Resize" })
      process.stdin.setRawMode(true)
      process.stdin.on("data", onData)
      process.stdin.resume()
      process.on("SIGWINCH", onResize)
      return { onData, onResize }
    }),
    ({ onData, onResize }) =>
      Effect.sync(() => {
        process.off("SIGWINCH", onResize)
        process.stdin.off("data", onData)
        process.stdin.setRawMode(false)
        process.stdin.pause()
      })
  )

/** The shell's output to stdout from `cursor` until it stops; returns its exit code. */
const pumpOutput = (connection: GuestConnection, shellId: string, cursor: number, redactor: Redactor) =>
  Effect.gen(function*() {
    let pending = new Uint8Array()
    // The workspace's secret values never reach the terminal, even split between reads.
    const redact = redactor.stream()
    for (;;) {
      const chunk = yield* readShell(connection, { id: shellId, cursor, maxBytes: POLL_MAX_BYTES, waitIdleMs: POLL_IDLE_MS })
      cursor = chunk.nextCursor
      const stopped = chunk.state === "stopped" && chunk.nextCursor === chunk.endCursor
      const shown = stopped ? Buffer.concat([redact.push(chunk.output), redact.end()]) : redact.push(chunk.output)
      const bytes = new Uint8Array(pending.byteLength + shown.byteLength)
      bytes.set(pending)
      bytes.set(shown, pending.byteLength)
      const text = utf8Prefix(bytes, Number.MAX_SAFE_INTEGER, stopped)
      pending = bytes.slice(text.bytes)
      if (text.text !== "") yield* writeStdout(text.text)
      if (stopped) return chunk.exitCode ?? 0
    }
  })

/** Keystrokes to the shell and resizes to its terminal, until the detach key. */
const pumpInput = (connection: GuestConnection, shellId: string, events: Queue.Queue<Event>) =>
  Effect.gen(function*() {
    for (;;) {
      const event = yield* Queue.take(events)
      if (event._tag === "Detach") return
      if (event._tag === "Input") yield* writeShell(connection, shellId, event.bytes)
      else yield* resizeShell(connection, shellId, localSize().cols, localSize().rows)
    }
  })

const attach = (workspaceId: string, shellId: Option.Option<string>) =>
  Effect.gen(function*() {
    if (!process.stdin.isTTY) {
      return yield* new UsageError({
        detail: "shell attach needs a terminal on stdin; from a script use `pyro workspace shell read` and `write`"
      })
    }
    const id = yield* decodeArgs(WorkspaceId, workspaceId)
    const given = Option.isSome(shellId) ? yield* decodeArgs(ShellId, shellId.value) : undefined
    const ws = yield* WorkspaceManager
    yield* ws.withGuest(id, ({ connection, paths, record }) =>
      withShellErrors(record.id, given, Effect.scoped(Effect.gen(function*() {
        const size = localSize()
        const redactor = yield* redactorFor(paths.dir)
        const shell = given ?? (yield* startShell(connection, record, { cwd: WORKSPACE_PATH, ...size })).shell_id
        // An existing shell takes this terminal's size; its screen redraws on the next output.
        if (given) yield* resizeShell(connection, shell, size.cols, size.rows)
        yield* writeStderr(
          `[workspace-shell-attach] workspace_id=${record.id} shell_id=${shell}: attached; press Ctrl-] to detach\r\n`
        )
        const events = yield* Queue.unbounded<Event>()
        yield* rawTerminal(events)
        // From the start of what the shell still holds: a new one's prompt, an old one's recent screen.
        const outcome = yield* Effect.raceFirst(
          Effect.map(pumpOutput(connection, shell, 0, redactor), (code) => ({ _tag: "Exited" as const, code })),
          Effect.as(pumpInput(connection, shell, events), { _tag: "Detached" as const })
        )
        yield* writeStderr(
          outcome._tag === "Exited"
            ? `\r\n[workspace-shell-attach] the shell exited (exit_code=${outcome.code}); close it with ` +
              `pyro workspace shell close ${record.id} ${shell}\r\n`
            : `\r\n[workspace-shell-attach] detached; the shell keeps running: ` +
              `pyro workspace shell attach ${record.id} ${shell}\r\n`
        )
      }))), { activity: true }) // noted once, when the session ends
  })

export const shellAttachCommand = Command.make("attach", {
  workspace_id: Args.withDescription(Args.text({ name: "WORKSPACE_ID" }), "The workspace's id"),
  shell_id: Args.optional(Args.withDescription(Args.text({ name: "SHELL_ID" }), "A shell to attach to (default: open a new one)"))
}, ({ shell_id, workspace_id }) => attach(workspace_id, shell_id)).pipe(
  Command.withDescription("Attach this terminal to a workspace shell (a new one unless SHELL_ID is given); Ctrl-] detaches")
)

