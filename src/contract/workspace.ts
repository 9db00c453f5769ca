/** workspace_* operations: inputs and results (the 2.4.0 "workspace-first" contract). */
import * as Schema from "effect/Schema"
import {
  Command,
  DEFAULT_MEM_MIB,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_TTL_SECONDS,
  DEFAULT_VCPU_COUNT,
  EnvironmentName,
  ExecutionMode,
  MemMib,
  Network,
  TimeoutSeconds,
  TtlSeconds,
  VcpuCount
} from "./common.js"
import { ExecResult, withDefault } from "./vm.js"

export const WORKSPACE_PATH = "/workspace"

export const WorkspaceId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{12}$/, { message: () => "must be a workspace_id as returned by workspace_create (12 hex digits)" }),
  Schema.annotations({ description: "The workspace's id, as returned by workspace_create." })
)

// `jsonSchema` on a filter keeps its annotations (description, default) in the tools' JSON Schema.
const HostPath = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(4096),
  Schema.filter((s) => !s.includes("\0") || "must not contain NUL", { jsonSchema: {} })
)

export const WorkspaceCreateInput = Schema.Struct({
  environment: EnvironmentName,
  vcpu_count: withDefault(VcpuCount, DEFAULT_VCPU_COUNT),
  mem_mib: withDefault(MemMib, DEFAULT_MEM_MIB),
  ttl_seconds: withDefault(TtlSeconds, DEFAULT_TTL_SECONDS),
  network: withDefault(Network, false),
  allow_host_compat: withDefault(
    Schema.Boolean.annotations({
      description: "Accepted for compatibility with vm_* calls. Workspaces need a VM: if none can boot, create fails."
    }),
    false
  ),
  seed_path: Schema.optional(HostPath.annotations({
    description: "A host directory or .tar/.tar.gz/.tgz archive copied into /workspace before create returns."
  }))
})
export type WorkspaceCreateInput = typeof WorkspaceCreateInput.Type

export const WorkspaceIdInput = Schema.Struct({ workspace_id: WorkspaceId })
export type WorkspaceIdInput = typeof WorkspaceIdInput.Type

/** A guest path that stays under /workspace once normalised. */
export const WorkspaceDest = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.includes("\0")) return "must not contain NUL"
    if (!s.startsWith("/")) return "must be an absolute guest path under /workspace"
    const parts = s.split("/").filter((p) => p !== "" && p !== ".")
    if (parts.includes("..")) return "must not contain .."
    if (parts[0] !== "workspace") return "must be /workspace or a directory under it"
    return true
  }, { jsonSchema: { pattern: "^/workspace(/.*)?$" } }),
  Schema.annotations({ description: "Where in the guest to put the files: /workspace or a directory under it." })
)

export const WorkspaceSyncPushInput = Schema.Struct({
  workspace_id: WorkspaceId,
  source_path: HostPath.annotations({ description: "A host directory or .tar/.tar.gz/.tgz archive." }),
  dest: withDefault(WorkspaceDest, WORKSPACE_PATH)
})
export type WorkspaceSyncPushInput = typeof WorkspaceSyncPushInput.Type

export const WorkspaceExecInput = Schema.Struct({
  workspace_id: WorkspaceId,
  command: Command,
  timeout_seconds: withDefault(TimeoutSeconds, DEFAULT_TIMEOUT_SECONDS)
})
export type WorkspaceExecInput = typeof WorkspaceExecInput.Type

export const WorkspaceSeed = Schema.Struct({
  mode: Schema.Literal("empty", "directory", "archive"),
  seed_path: Schema.NullOr(Schema.String),
  files: Schema.Int,
  bytes: Schema.Int
})
export type WorkspaceSeed = typeof WorkspaceSeed.Type

export const LastCommand = Schema.Struct({
  sequence: Schema.Int,
  command: Command,
  exit_code: Schema.Int,
  duration_ms: Schema.Int,
  finished_at: Schema.String
})

export const WorkspaceState = Schema.Literal("started", "stopped")

export const WorkspaceSummary = Schema.Struct({
  workspace_id: Schema.String,
  environment: Schema.String,
  /** "stopped": its VM is not running now (the host restarted); the next exec boots it with its files. */
  state: WorkspaceState,
  workspace_path: Schema.Literal(WORKSPACE_PATH),
  execution_mode: ExecutionMode,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int,
  network_enabled: Schema.Boolean,
  command_count: Schema.Int,
  last_command: Schema.NullOr(LastCommand),
  workspace_seed: WorkspaceSeed,
  ttl_seconds: Schema.Int,
  created_at: Schema.String,
  expires_at: Schema.String
})
export type WorkspaceSummary = typeof WorkspaceSummary.Type

export const WorkspaceExecResult = Schema.Struct({
  workspace_id: Schema.String,
  sequence: Schema.Int,
  cwd: Schema.Literal(WORKSPACE_PATH),
  ...ExecResult.fields
})
export type WorkspaceExecResult = typeof WorkspaceExecResult.Type

export const WorkspaceSyncResult = Schema.Struct({
  workspace_id: Schema.String,
  source_path: Schema.String,
  dest: Schema.String,
  kind: Schema.Literal("directory", "archive"),
  files: Schema.Int,
  directories: Schema.Int,
  symlinks: Schema.Int,
  hardlinks: Schema.Int,
  bytes: Schema.Int,
  /** Entries imported with their setuid/setgid bits cleared. */
  neutralised: Schema.Array(Schema.String),
  duration_ms: Schema.Int
})
export type WorkspaceSyncResult = typeof WorkspaceSyncResult.Type

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

export const WorkspaceDeleteResult = Schema.Struct({
  workspace_id: Schema.String,
  state: Schema.Literal("deleted"),
  /** False when there was nothing left to delete (delete is idempotent). */
  deleted: Schema.Boolean,
  was_running: Schema.Boolean
})
export type WorkspaceDeleteResult = typeof WorkspaceDeleteResult.Type
