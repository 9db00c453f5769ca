/**
 * Every failure a public form (CLI, MCP, SDK) can report, declared here as a
 * Schema.TaggedError (so its fields are a schema too), as one tagged union,
 * with the stable `code` each is known by outside. The layers below raise
 * these; nothing here imports from them.
 */
import * as Schema from "effect/Schema"

/** Entry names come from untrusted sources: quoted, control characters escaped, bounded. */
export const quoteEntryName = (name: string) => {
  const quoted = JSON.stringify(name)
  return quoted.length > 300 ? `${quoted.slice(0, 297)}..."` : quoted
}

/** Arguments that do not match an operation's input schema: one `field: problem` per issue. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", { detail: Schema.String }) {
  override get message() {
    return this.detail
  }
}

export class VmNotFound extends Schema.TaggedError<VmNotFound>()("VmNotFound", { vmId: Schema.String }) {
  override get message() {
    return `no VM with vm_id ${this.vmId} (it may have been deleted, run its one vm_exec, or expired; vm_create makes a new one)`
  }
}

export class VmLimitReached extends Schema.TaggedError<VmLimitReached>()("VmLimitReached", {
  limit: Schema.Number,
  active: Schema.Number,
  /** Spare VMs waiting to be claimed: shown, never counted (a run that claims one is). */
  spares: Schema.optional(Schema.Number)
}) {
  override get message() {
    const spares = this.spares ? ` (and ${this.spares} spare VM${this.spares === 1 ? "" : "s"}, which do not count)` : ""
    return `too many active VMs: ${this.active} of ${this.limit} allowed${spares}; delete a VM or workspace (vm_delete, workspace_delete) or raise PYRO_MAX_ACTIVE_VMS`
  }
}

export class WorkspaceNotFound extends Schema.TaggedError<WorkspaceNotFound>()("WorkspaceNotFound", {
  workspaceId: Schema.String
}) {
  override get message() {
    return `no workspace with workspace_id ${this.workspaceId} (it may have been deleted or expired; workspace_create makes a new one)`
  }
}

/** The guest could not unpack an import (disk full, a file in the way). */
export class WorkspaceImportFailed extends Schema.TaggedError<WorkspaceImportFailed>()("WorkspaceImportFailed", {
  workspaceId: Schema.String,
  dest: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `could not import into ${this.dest} in workspace ${this.workspaceId}: ${this.detail}`
  }
}

/** An import source entry the import rules refuse. */
export class UnsafeImportEntry extends Schema.TaggedError<UnsafeImportEntry>()("UnsafeImportEntry", {
  /** The host path of the directory or archive being imported. */
  source: Schema.String,
  /** The entry's name as the source gives it (not normalised). */
  entry: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `refusing to import ${this.source}: entry ${quoteEntryName(this.entry)} ${this.reason}`
  }
}

/** The source cannot be imported at all: missing, not a directory or tar archive, unreadable, corrupt or truncated. */
export class ImportSourceError extends Schema.TaggedError<ImportSourceError>()("ImportSourceError", {
  source: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `cannot import ${this.source}: ${this.detail}`
  }
}

export class EnvironmentNotFound extends Schema.TaggedError<EnvironmentNotFound>()("EnvironmentNotFound", {
  name: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `unknown environment "${this.name}"; known environments: ${this.known.join(", ")} ` +
      `(or oci://HOST/REPO:TAG for a container image)`
  }
}

export class EnvironmentNotInstalled extends Schema.TaggedError<EnvironmentNotInstalled>()("EnvironmentNotInstalled", {
  name: Schema.String
}) {
  override get message() {
    return `environment ${this.name} is not installed; run: pyro env pull ${this.name}`
  }
}

export class EnvironmentBuildFailed extends Schema.TaggedError<EnvironmentBuildFailed>()("EnvironmentBuildFailed", {
  name: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `cannot install environment ${this.name}: ${this.detail}`
  }
}

export const KernelFailure = Schema.Literal("Kernel", "Modules", "Agent", "Initramfs")
export type KernelFailure = typeof KernelFailure.Type

/** The kernel, its modules, the guest agent or the initramfs could not be fetched or built. */
export class KernelError extends Schema.TaggedError<KernelError>()("KernelError", {
  reason: KernelFailure,
  detail: Schema.String
}) {
  override get message() {
    return `${this.reason.toLowerCase()} unavailable: ${this.detail}`
  }
}

export const BootStage = Schema.Literal("Prepare", "Spawn", "Kernel", "AgentHandshake", "Timeout", "Attach", "Restore", "Template")
export type BootStage = typeof BootStage.Type

/** A guest that did not boot; the stage, and the tails of QEMU's stderr and the console. */
export class BootError extends Schema.TaggedError<BootError>()("BootError", {
  stage: BootStage,
  detail: Schema.String,
  /** Last lines QEMU wrote on stderr. */
  vmmStderr: Schema.optional(Schema.String),
  /** Last lines of the guest console (kernel and agent messages). */
  console: Schema.optional(Schema.String),
  /** How QEMU ended, when the boot failed because it did. */
  vmmExit: Schema.optional(Schema.Struct({ code: Schema.NullOr(Schema.Number), signal: Schema.NullOr(Schema.String) }))
}) {
  override get message() {
    const tails = [
      this.vmmStderr ? `\n--- qemu stderr ---\n${this.vmmStderr.trimEnd()}` : "",
      this.console ? `\n--- guest console ---\n${this.console.trimEnd()}` : ""
    ].join("")
    return `VM boot failed (${this.stage}): ${this.detail}${tails}`
  }
}

/** Busy: every host channel of the VM is leased by another process (src/workspace/channels.ts). */
export const ChannelFailure = Schema.Literal("Closed", "Protocol", "Transport", "Unresponsive", "Busy")
export type ChannelFailure = typeof ChannelFailure.Type

/** The guest channel is unusable: closed, broken by a malformed frame, silent, or all taken. */
export class GuestChannelError extends Schema.TaggedError<GuestChannelError>()("GuestChannelError", {
  reason: ChannelFailure,
  detail: Schema.String
}) {
  override get message() {
    return `guest channel ${this.reason.toLowerCase()}: ${this.detail}`
  }
}

/** Why a file operation in a workspace could not be done, as the guest's file tool reported it. */
export const WorkspaceFileProblem = Schema.Literal("not_found", "outside_workspace", "wrong_type", "too_large", "failed")
export type WorkspaceFileProblem = typeof WorkspaceFileProblem.Type

export class WorkspaceFileError extends Schema.TaggedError<WorkspaceFileError>()("WorkspaceFileError", {
  workspaceId: Schema.String,
  operation: Schema.String,
  path: Schema.String,
  problem: WorkspaceFileProblem,
  detail: Schema.String
}) {
  override get message() {
    return `${this.operation} ${this.path} in workspace ${this.workspaceId}: ${this.detail}`
  }
}

/** A patch that does not apply exactly; nothing was changed. */
export class WorkspacePatchConflict extends Schema.TaggedError<WorkspacePatchConflict>()("WorkspacePatchConflict", {
  workspaceId: Schema.String,
  path: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message() {
    return `the patch was not applied to workspace ${this.workspaceId}, and nothing was changed: ` +
      `${this.path ? `${this.path}: ` : ""}${this.detail} (read the file again and make the patch against it)`
  }
}

/** An export that could not be written as asked (the guest's content, or the host path); nothing was left half-written. */
export class WorkspaceExportFailed extends Schema.TaggedError<WorkspaceExportFailed>()("WorkspaceExportFailed", {
  workspaceId: Schema.String,
  path: Schema.String,
  /** The archive entry at fault, when it is one entry's. */
  entry: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message() {
    return `could not export ${this.path} from workspace ${this.workspaceId}: ` +
      `${this.entry !== undefined ? `${JSON.stringify(this.entry)}: ` : ""}${this.detail}`
  }
}

/** A disk tool asked of a workspace whose VM runs: its disk is read only while nothing writes it. */
export class WorkspaceNotStopped extends Schema.TaggedError<WorkspaceNotStopped>()("WorkspaceNotStopped", {
  workspaceId: Schema.String,
  operation: Schema.String
}) {
  override get message() {
    return `${this.operation} needs workspace ${this.workspaceId} stopped, and its VM is running: ` +
      `stop it first (workspace_stop; workspace_start or the next exec boots it again)`
  }
}

/** Why a service operation could not be done; a readiness failure carries the service's log tails. */
export const WorkspaceServiceProblem = Schema.Literal(
  "not_found",
  "already_running",
  "not_started",
  "not_ready",
  "exited",
  "failed"
)
export type WorkspaceServiceProblem = typeof WorkspaceServiceProblem.Type

export class WorkspaceServiceError extends Schema.TaggedError<WorkspaceServiceError>()("WorkspaceServiceError", {
  workspaceId: Schema.String,
  serviceName: Schema.String,
  problem: WorkspaceServiceProblem,
  detail: Schema.String,
  /** The last lines of the service's stdout and stderr, when it failed its readiness or exited. */
  stdoutTail: Schema.optional(Schema.String),
  stderrTail: Schema.optional(Schema.String)
}) {
  override get message() {
    const tails = [
      this.stdoutTail ? `\n--- service stdout (last lines) ---\n${this.stdoutTail.trimEnd()}` : "",
      this.stderrTail ? `\n--- service stderr (last lines) ---\n${this.stderrTail.trimEnd()}` : ""
    ].join("")
    const what = this.serviceName ? `service ${this.serviceName}` : "services"
    return `${what} in workspace ${this.workspaceId}: ${this.detail}${tails}`
  }
}

/** Why a shell operation could not be done. */
export const WorkspaceShellProblem = Schema.Literal("not_found", "limit_reached", "stopped", "busy", "start_failed")
export type WorkspaceShellProblem = typeof WorkspaceShellProblem.Type

export class WorkspaceShellError extends Schema.TaggedError<WorkspaceShellError>()("WorkspaceShellError", {
  workspaceId: Schema.String,
  shellId: Schema.optional(Schema.String),
  problem: WorkspaceShellProblem,
  detail: Schema.String
}) {
  override get message() {
    return `${this.shellId !== undefined ? `shell ${this.shellId}` : "a new shell"} in workspace ${this.workspaceId}: ${this.detail}`
  }
}

/** Why a snapshot, reset or fork could not be done. */
export const WorkspaceSnapshotProblem = Schema.Literal("not_found", "exists", "limit_reached", "failed")
export type WorkspaceSnapshotProblem = typeof WorkspaceSnapshotProblem.Type

export class WorkspaceSnapshotError extends Schema.TaggedError<WorkspaceSnapshotError>()("WorkspaceSnapshotError", {
  workspaceId: Schema.String,
  snapshotName: Schema.optional(Schema.String),
  problem: WorkspaceSnapshotProblem,
  detail: Schema.String
}) {
  override get message() {
    return `${this.snapshotName !== undefined ? `snapshot ${this.snapshotName}` : "a snapshot"} of workspace ${this.workspaceId}: ${this.detail}`
  }
}

export type PyroError =
  | InvalidInput
  | VmNotFound
  | VmLimitReached
  | EnvironmentNotFound
  | EnvironmentNotInstalled
  | EnvironmentBuildFailed
  | KernelError
  | BootError
  | GuestChannelError
  | WorkspaceNotFound
  | WorkspaceImportFailed
  | UnsafeImportEntry
  | ImportSourceError
  | WorkspaceFileError
  | WorkspacePatchConflict
  | WorkspaceExportFailed
  | WorkspaceNotStopped
  | WorkspaceServiceError
  | WorkspaceShellError
  | WorkspaceSnapshotError

const CODES: Record<PyroError["_tag"], string> = {
  InvalidInput: "invalid_input",
  VmNotFound: "vm_not_found",
  VmLimitReached: "vm_limit_reached",
  EnvironmentNotFound: "environment_not_found",
  EnvironmentNotInstalled: "environment_not_installed",
  EnvironmentBuildFailed: "environment_unavailable",
  KernelError: "kernel_unavailable",
  BootError: "boot_failed",
  GuestChannelError: "guest_channel_failed",
  WorkspaceNotFound: "workspace_not_found",
  WorkspaceImportFailed: "workspace_import_failed",
  UnsafeImportEntry: "unsafe_import_entry",
  ImportSourceError: "invalid_import_source",
  WorkspaceFileError: "workspace_file_error",
  WorkspacePatchConflict: "workspace_patch_conflict",
  WorkspaceExportFailed: "workspace_export_failed",
  WorkspaceNotStopped: "workspace_not_stopped",
  WorkspaceServiceError: "workspace_service_error",
  WorkspaceShellError: "workspace_shell_error",
  WorkspaceSnapshotError: "workspace_snapshot_error"
}

/** The `code` of a public failure; anything else is an internal error. */
export const errorCode = (error: unknown): string => {
  const tag = (error as { _tag?: string } | null)?._tag
  return tag && tag in CODES ? CODES[tag as PyroError["_tag"]] : "internal_error"
}

export const errorMessage = (error: unknown): string => {
  if (error instanceof Error) return error.message
  if (typeof error === "string") return error
  const message = (error as { message?: unknown } | null)?.message
  return typeof message === "string" ? message : JSON.stringify(error)
}
