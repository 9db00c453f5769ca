/**
 * shell_open | read | write | signal | close, over the agent's shells
 * (src/vm/protocol/shell.ts). The guest keeps each shell and its output, so
 * any process may use a shell another opened; the host keeps nothing. Like
 * file operations, none takes the workspace's lock (only a boot does).
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { InvalidInput, WorkspaceShellError } from "../../contract/errors.js"
import type {
  ShellCloseInput,
  ShellOpenInput,
  ShellReadInput,
  ShellResult,
  ShellSignalInput,
  ShellWriteInput
} from "../../contract/workspace/shells.js"
import { iso } from "../../machine/record.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { GuestRequestFailed } from "../../vm/errors.js"
import { DEFAULT_GUEST_ENV } from "../../vm/execCommand.js"
import { MAX_SHELLS } from "../../vm/protocol/constants.js"
import type { GuestConnection } from "../../vm/protocol/mux.js"
import {
  closeShell as closeGuestShell,
  openShell as openGuestShell,
  readShell as readGuestShell,
  type ShellFacts,
  signalShell as signalGuestShell,
  writeShell as writeGuestShell
} from "../../vm/protocol/shell.js"
import type { WorkspacePaths, WorkspaceRecord } from "../store.js"
import { renderPlain } from "../shellRender.js"
import { utf8Prefix } from "../utf8Prefix.js"
import { readSecrets, redactorFor, secretEnvEntries } from "../secrets/store.js"
import { guestNetworkEnv, networkOfRecord } from "../../vm/network/policy.js"

/** One read asks the guest for 4 bytes per character asked for (UTF-8's longest), up to this. */
const READ_MAX_BYTES = 256 * 1024

/** What a shell's processes see: exec's environment, a terminal's TERM, then any extra variables (they win). */
export const shellEnv = (extraEnv: ReadonlyArray<readonly [string, string]>) => {
  const extra = new Set(extraEnv.map(([k]) => k))
  return [
    ...DEFAULT_GUEST_ENV.filter(([k]) => k !== "TERM" && !extra.has(k)),
    ...(extra.has("TERM") ? [] : [["TERM", "xterm-256color"] as const]),
    ...extraEnv
  ]
}

const newShellId = () => randomBytes(6).toString("hex")

const shellFields = (record: WorkspaceRecord, facts: ShellFacts): ShellResult => ({
  workspace_id: record.id,
  shell_id: facts.id,
  cwd: facts.cwd,
  cols: facts.cols,
  rows: facts.rows,
  state: facts.state,
  started_at: iso(facts.startedMs),
  ended_at: facts.endedMs === undefined ? null : iso(facts.endedMs),
  exit_code: facts.exitCode ?? null,
  execution_mode: record.execution_mode
})

/** The agent's refusals (docs/guest-protocol.md §14) as the public errors they are. */
const ERRNO = { ENOENT: 2, EAGAIN: 11, EEXIST: 17, EBUSY: 16, EMFILE: 24, EPIPE: 32, ERANGE: 34, EALREADY: 114 }

const publicError = (workspaceId: string, shellId: string | undefined, e: GuestRequestFailed) => {
  const error = (problem: WorkspaceShellError["problem"], detail: string) =>
    new WorkspaceShellError({ workspaceId, ...(shellId !== undefined ? { shellId } : {}), problem, detail })
  if (e.stage === "chdir") return error("start_failed", `cannot start in the working directory (${e.detail})`)
  if (e.stage === "exec" || e.stage === "spawn") return error("start_failed", `cannot start the shell (${e.detail})`)
  switch (e.errno) {
    case ERRNO.ENOENT:
      return error("not_found", "no such shell (it was closed, or the workspace's VM was restarted since it opened)")
    case ERRNO.EMFILE:
      return error("limit_reached", `the workspace already has ${MAX_SHELLS} shells open; close one (shell_close) first`)
    case ERRNO.EPIPE:
      return error("stopped", "the shell has stopped; its output can still be read until shell_close")
    case ERRNO.ERANGE:
      return new InvalidInput({ detail: "cursor: is past the end of the shell's output (use a read's next_cursor)" })
    case ERRNO.EAGAIN:
    case ERRNO.EBUSY:
    case ERRNO.EALREADY:
    case ERRNO.EEXIST:
      return error("busy", `${e.detail}; try again`)
    default:
      return error("busy", e.detail)
  }
}

/** `effect` with the agent's refusals made the public errors they are. */
export const withShellErrors = <A, E, R>(
  workspaceId: string,
  shellId: string | undefined,
  effect: Effect.Effect<A, E | GuestRequestFailed, R>
) =>
  Effect.catchIf(
    effect,
    (e): e is GuestRequestFailed => e instanceof GuestRequestFailed,
    (e) => Effect.fail(publicError(workspaceId, shellId, e))
  )

/**
 * `use` on the workspace's guest, the agent's refusals made public errors.
 * `activity`: it changes the shell (everything but a read), so it counts as the workspace's activity.
 */
const onShell = <A, E, R>(
  workspaceId: string,
  shellId: string | undefined,
  use: (connection: GuestConnection, record: WorkspaceRecord, paths: WorkspacePaths) => Effect.Effect<A, E | GuestRequestFailed, R>,
  activity = true
) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(workspaceId, ({ connection, paths, record }) => withShellErrors(record.id, shellId, use(connection, record, paths)), {
      activity
    }))

export interface ShellOpenOptions {
  /** Variables added to the shell's environment (after the defaults, which they override). */
  readonly extraEnv?: ReadonlyArray<readonly [string, string]>
}

/** A new shell on a connection already held (attach keeps one for its whole session). */
export const startShell = (
  connection: GuestConnection,
  record: WorkspaceRecord,
  input: Omit<ShellOpenInput, "workspace_id">,
  options: ShellOpenOptions = {}
) =>
  Effect.map(
    openGuestShell(connection, {
      id: newShellId(),
      argv: [],
      env: shellEnv([...guestNetworkEnv(networkOfRecord(record)), ...(options.extraEnv ?? [])]),
      cwd: input.cwd,
      cols: input.cols,
      rows: input.rows
    }),
    (facts) => shellFields(record, facts)
  )

export const openShellWith = (input: ShellOpenInput, options: ShellOpenOptions = {}) =>
  onShell(input.workspace_id, undefined, (connection, record) => startShell(connection, record, input, options))

export const openShell = (input: ShellOpenInput) =>
  onShell(input.workspace_id, undefined, (connection, record, paths) =>
    Effect.flatMap(readSecrets(paths.dir), (secrets) =>
      Effect.flatMap(secretEnvEntries(secrets, input.secret_env), (extraEnv) =>
        startShell(connection, record, input, { extraEnv }))))

/**
 * `cursor` and `next_cursor` count the raw output's bytes; `max_chars` bounds
 * the characters returned, never cutting one in two.
 */
export const readShell = (input: ShellReadInput) =>
  onShell(input.workspace_id, input.shell_id, (connection, record, paths) =>
    Effect.gen(function*() {
      const redactor = yield* redactorFor(paths.dir)
      // With secrets, the bytes just before the cursor come too: a value that began there is still seen whole.
      const from = Math.max(0, input.cursor - Math.max(0, redactor.longest - 1))
      const chunk = yield* readGuestShell(connection, {
        id: input.shell_id,
        cursor: from,
        // Room for a whole value past the cut, so a short read can still step over one.
        maxBytes: Math.min(4 * input.max_chars + redactor.longest, READ_MAX_BYTES) + (input.cursor - from),
        waitIdleMs: input.wait_for_idle_ms ?? 0
      })
      const skip = Math.max(0, input.cursor - chunk.cursor)
      const start = chunk.cursor + skip
      const wanted = chunk.output.subarray(skip)
      // A character cut at the end is left for the next read, unless nothing will ever follow it.
      const final = chunk.state === "stopped" && chunk.nextCursor === chunk.endCursor
      let { bytes, text } = utf8Prefix(wanted, input.max_chars, final)
      if (redactor.active) {
        // Never end inside a secret's value: past it when it is all here, else before it (and a character).
        bytes = Math.max(skip, redactor.safeCut(chunk.output, skip + bytes, final)) - skip
        while (bytes > 0 && bytes < wanted.byteLength && (wanted[bytes]! & 0xc0) === 0x80) bytes--
        text = new TextDecoder().decode(redactor.from(chunk.output.subarray(0, skip + bytes), skip))
      }
      const nextCursor = start + bytes
      const output = input.plain ? yield* Effect.promise(() => renderPlain(text, chunk.cols, chunk.rows)) : text
      return {
        ...shellFields(record, chunk),
        cursor: start,
        next_cursor: nextCursor,
        output,
        truncated: nextCursor < chunk.endCursor,
        dropped_bytes: start - input.cursor
      }
    }), false)

export const writeShell = (input: ShellWriteInput) =>
  onShell(input.workspace_id, input.shell_id, (connection, record) => {
    const text = input.append_newline ? `${input.input}\n` : input.input
    return Effect.map(writeGuestShell(connection, input.shell_id, new TextEncoder().encode(text)), (facts) => ({
      ...shellFields(record, facts),
      input_length: [...text].length,
      append_newline: input.append_newline
    }))
  })

export const signalShell = (input: ShellSignalInput) =>
  onShell(input.workspace_id, input.shell_id, (connection, record) =>
    Effect.map(signalGuestShell(connection, input.shell_id, input.signal_name), (facts) => ({
      ...shellFields(record, facts),
      signal: input.signal_name
    })))

export const closeShell = (input: ShellCloseInput) =>
  onShell(input.workspace_id, input.shell_id, (connection, record) =>
    Effect.map(closeGuestShell(connection, input.shell_id), (facts) => ({
      ...shellFields(record, facts),
      closed: true as const
    })))
