/**
 * shell_open | read | write | signal | close: PTY shells kept in a workspace's
 * guest (the original's 2.5.0 names, defaults and result fields; plain and
 * wait_for_idle_ms from 3.5.0).
 */
import * as Schema from "effect/Schema"
import { withDefault } from "../vm.js"
import { utf8Text } from "./files.js"
import { WORKSPACE_PATH, WorkspaceId, WorkspacePath, WorkspaceResultFields } from "./paths.js"
import { SecretEnv } from "./secrets.js"

export const DEFAULT_SHELL_COLS = 120
export const DEFAULT_SHELL_ROWS = 30
export const DEFAULT_SHELL_MAX_CHARS = 65536
/** The most characters one read returns. */
export const SHELL_MAX_CHARS = 1024 * 1024
/** The longest wait_for_idle_ms (the guest also answers after 30 s however busy the shell is). */
export const SHELL_MAX_WAIT_FOR_IDLE_MS = 10_000
/** The most input one write takes, in bytes of UTF-8 (the appended newline aside). */
export const SHELL_MAX_INPUT_BYTES = 64 * 1024
export const SHELL_SIGNAL_NAMES = ["HUP", "INT", "TERM", "KILL"] as const

const intBetween = (min: number, max: number, description: string) =>
  Schema.Int.pipe(
    Schema.between(min, max, { message: () => `must be a whole number from ${min} to ${max}` }),
    Schema.annotations({ description })
  )

export const ShellId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{12}$/, { message: () => "must be a shell_id as returned by shell_open (12 hex digits)" }),
  Schema.annotations({ description: "The shell's id, as returned by shell_open." })
)

const shellRef = { workspace_id: WorkspaceId, shell_id: ShellId }

export const ShellOpenInput = Schema.Struct({
  workspace_id: WorkspaceId,
  cwd: withDefault(
    WorkspacePath.annotations({ description: "Where the shell starts: /workspace or a directory under it." }),
    WORKSPACE_PATH
  ),
  cols: withDefault(intBetween(10, 500, "Terminal width in columns."), DEFAULT_SHELL_COLS),
  rows: withDefault(intBetween(5, 200, "Terminal height in rows."), DEFAULT_SHELL_ROWS),
  secret_env: Schema.optional(SecretEnv)
})
export type ShellOpenInput = typeof ShellOpenInput.Type

export const ShellReadInput = Schema.Struct({
  ...shellRef,
  cursor: withDefault(
    intBetween(0, Number.MAX_SAFE_INTEGER, "Read from this byte offset of the shell's raw output (a read's next_cursor)."),
    0
  ),
  max_chars: withDefault(
    intBetween(1, SHELL_MAX_CHARS, "Return at most this many characters (truncated says whether more output waits)."),
    DEFAULT_SHELL_MAX_CHARS
  ),
  plain: withDefault(
    Schema.Boolean.annotations({
      description: "Render the output as a terminal would show it: cursor moves, erases and overwrites applied, colours " +
        "and other control sequences gone. Cursors still count raw bytes."
    }),
    false
  ),
  wait_for_idle_ms: Schema.optional(intBetween(
    0,
    SHELL_MAX_WAIT_FOR_IDLE_MS,
    "Wait until the shell has written nothing for this many ms (at most 30 s in all), then return what it wrote."
  ))
})
export type ShellReadInput = typeof ShellReadInput.Type

export const ShellWriteInput = Schema.Struct({
  ...shellRef,
  input: utf8Text(SHELL_MAX_INPUT_BYTES, "one write").pipe(
    Schema.annotations({ description: "Text typed into the shell's terminal (control characters included)." })
  ),
  append_newline: withDefault(
    Schema.Boolean.annotations({ description: "Add a newline after input, as pressing Enter would." }),
    true
  )
})
export type ShellWriteInput = typeof ShellWriteInput.Type

export const ShellSignalName = Schema.Literal(...SHELL_SIGNAL_NAMES)
export type ShellSignalName = typeof ShellSignalName.Type

export const ShellSignalInput = Schema.Struct({
  ...shellRef,
  signal_name: withDefault(
    ShellSignalName.annotations({
      description: "INT goes to the job in the foreground, as Ctrl-C would; HUP, TERM and KILL to it and the shell."
    }),
    "INT"
  )
})
export type ShellSignalInput = typeof ShellSignalInput.Type

export const ShellCloseInput = Schema.Struct(shellRef)
export type ShellCloseInput = typeof ShellCloseInput.Type

/** What every shell result carries. */
export const ShellFields = {
  ...WorkspaceResultFields,
  shell_id: Schema.String,
  cwd: Schema.String,
  cols: Schema.Int,
  rows: Schema.Int,
  state: Schema.Literal("running", "stopped"),
  started_at: Schema.String,
  ended_at: Schema.NullOr(Schema.String),
  exit_code: Schema.NullOr(Schema.Int)
}

export const ShellResult = Schema.Struct(ShellFields)
export type ShellResult = typeof ShellResult.Type

export const ShellReadResult = Schema.Struct({
  ...ShellFields,
  /** Where `output` starts in the raw output: later than asked when older output was dropped. */
  cursor: Schema.Int,
  next_cursor: Schema.Int,
  output: Schema.String,
  /** More output waits beyond next_cursor. */
  truncated: Schema.Boolean,
  /** Output between the cursor asked for and `cursor`, dropped by the guest (it keeps the last 1 MiB). */
  dropped_bytes: Schema.Int
})
export type ShellReadResult = typeof ShellReadResult.Type

export const ShellWriteResult = Schema.Struct({
  ...ShellFields,
  /** Characters written, the newline included. */
  input_length: Schema.Int,
  append_newline: Schema.Boolean
})
export type ShellWriteResult = typeof ShellWriteResult.Type

export const ShellSignalResult = Schema.Struct({ ...ShellFields, signal: ShellSignalName })
export type ShellSignalResult = typeof ShellSignalResult.Type

export const ShellCloseResult = Schema.Struct({ ...ShellFields, closed: Schema.Literal(true) })
export type ShellCloseResult = typeof ShellCloseResult.Type
