/** workspace_exec and workspace_logs: commands in a workspace and their journal. */
import * as Schema from "effect/Schema"
import { Command, DEFAULT_TIMEOUT_SECONDS, ExecutionMode, TimeoutSeconds } from "../common.js"
import { ExecResult, withDefault } from "../vm.js"
import { WORKSPACE_PATH, WorkspaceId } from "./paths.js"
import { SecretEnv } from "./secrets.js"

export const WorkspaceExecInput = Schema.Struct({
  workspace_id: WorkspaceId,
  command: Command,
  timeout_seconds: withDefault(TimeoutSeconds, DEFAULT_TIMEOUT_SECONDS),
  secret_env: Schema.optional(SecretEnv)
})
export type WorkspaceExecInput = typeof WorkspaceExecInput.Type

export const WorkspaceExecResult = Schema.Struct({
  workspace_id: Schema.String,
  sequence: Schema.Int,
  cwd: Schema.Literal(WORKSPACE_PATH),
  ...ExecResult.fields
})
export type WorkspaceExecResult = typeof WorkspaceExecResult.Type

/** One journal entry: an exec and its result, output capped for the journal. */
export const JournalEntry = Schema.Struct({
  sequence: Schema.Int,
  command: Command,
  cwd: Schema.String,
  execution_mode: ExecutionMode,
  exit_code: Schema.Int,
  timed_out: Schema.Boolean,
  duration_ms: Schema.Int,
  started_at: Schema.String,
  finished_at: Schema.String,
  stdout: Schema.String,
  stderr: Schema.String,
  /** The journal keeps at most JOURNAL_OUTPUT_BYTES of each stream; *_bytes counts all of it. */
  stdout_truncated: Schema.Boolean,
  stderr_truncated: Schema.Boolean,
  stdout_bytes: Schema.Int,
  stderr_bytes: Schema.Int
})
export type JournalEntry = typeof JournalEntry.Type

export const WorkspaceLogs = Schema.Struct({
  workspace_id: Schema.String,
  count: Schema.Int,
  entries: Schema.Array(JournalEntry)
})
export type WorkspaceLogs = typeof WorkspaceLogs.Type
