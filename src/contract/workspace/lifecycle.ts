/** workspace_create, workspace_status, workspace_delete: a workspace's lifecycle and its summary. */
import * as Schema from "effect/Schema"
import {
  Command,
  DEFAULT_MEM_MIB,
  DEFAULT_TTL_SECONDS,
  DEFAULT_VCPU_COUNT,
  EnvironmentName,
  ExecutionMode,
  MemMib,
  TtlSeconds,
  VcpuCount
} from "../common.js"
import { NetworkInputFields, NetworkResultFields } from "../network.js"
import { withDefault } from "../vm.js"
import { Labels, WorkspaceName } from "./labels.js"
import { HostPath, WORKSPACE_PATH, WorkspaceId } from "./paths.js"
import { SecretMetadata, SecretsInput } from "./secrets.js"

export const WorkspaceCreateInput = Schema.Struct({
  environment: EnvironmentName,
  vcpu_count: withDefault(VcpuCount, DEFAULT_VCPU_COUNT),
  mem_mib: withDefault(MemMib, DEFAULT_MEM_MIB),
  ttl_seconds: withDefault(TtlSeconds, DEFAULT_TTL_SECONDS),
  ...NetworkInputFields,
  allow_host_compat: withDefault(
    Schema.Boolean.annotations({
      description: "Accepted for compatibility with vm_* calls. Workspaces need a VM: if none can boot, create fails."
    }),
    false
  ),
  seed_path: Schema.optional(HostPath.annotations({
    description: "A host directory or .tar/.tar.gz/.tgz archive copied into /workspace before create returns."
  })),
  secrets: Schema.optional(SecretsInput),
  name: Schema.optional(WorkspaceName),
  labels: Schema.optional(Labels)
})
export type WorkspaceCreateInput = typeof WorkspaceCreateInput.Type

export const WorkspaceIdInput = Schema.Struct({ workspace_id: WorkspaceId })
export type WorkspaceIdInput = typeof WorkspaceIdInput.Type

/**
 * Where a seed came from: `seed_path` (manual), the server's project (a Git
 * checkout's tracked files, or a host-side clone of a repository), or nothing.
 */
export const SeedOriginKind = Schema.Literal("manual", "project_path", "repo_url", "empty")
export type SeedOriginKind = typeof SeedOriginKind.Type

export const WorkspaceSeed = Schema.Struct({
  mode: Schema.Literal("empty", "directory", "archive"),
  /** As the caller gave it; null unless origin_kind is "manual". */
  seed_path: Schema.NullOr(Schema.String),
  origin_kind: SeedOriginKind,
  /** The checkout's path (project_path), `URL@commit` (repo_url), else null. */
  origin_ref: Schema.NullOr(Schema.String),
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
  /** Null when it was given none (and for workspaces made before names). */
  name: Schema.NullOr(Schema.String),
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  environment: Schema.String,
  /** "stopped": its VM is not running now (the host restarted); the next exec boots it with its files. */
  state: WorkspaceState,
  workspace_path: Schema.Literal(WORKSPACE_PATH),
  execution_mode: ExecutionMode,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int,
  ...NetworkResultFields,
  command_count: Schema.Int,
  last_command: Schema.NullOr(LastCommand),
  workspace_seed: WorkspaceSeed,
  /** Names and kinds only: a value never leaves the host's secrets file and the guest. */
  secrets: Schema.Array(SecretMetadata),
  ttl_seconds: Schema.Int,
  created_at: Schema.String,
  /** The last exec, file write, patch, sync, service start/stop or shell input (docs/public-contract.md §6). */
  last_activity_at: Schema.String,
  expires_at: Schema.String,
  /** Resets so far (workspace_reset), and when the last was. */
  reset_count: Schema.Int,
  last_reset_at: Schema.NullOr(Schema.String),
  /** Snapshot names, oldest first ("baseline" first when it has one). */
  snapshots: Schema.Array(Schema.String),
  /** The workspace this one was forked from (workspace_fork), else null. */
  forked_from: Schema.NullOr(Schema.String)
})
export type WorkspaceSummary = typeof WorkspaceSummary.Type

export const WorkspaceDeleteResult = Schema.Struct({
  workspace_id: Schema.String,
  state: Schema.Literal("deleted"),
  /** False when there was nothing left to delete (delete is idempotent). */
  deleted: Schema.Boolean,
  was_running: Schema.Boolean
})
export type WorkspaceDeleteResult = typeof WorkspaceDeleteResult.Type
