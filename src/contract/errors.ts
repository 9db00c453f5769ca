/**
 * The failures every public form (CLI, MCP, SDK) can report, as one tagged
 * union, and the stable `code` each is known by outside.
 */
import * as Data from "effect/Data"
import * as Schema from "effect/Schema"
import type { EnvironmentBuildFailed, EnvironmentNotFound, EnvironmentNotInstalled } from "../services/EnvironmentStore.js"
import type { KernelError } from "../services/KernelStore.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"
import type { ImportSourceError, UnsafeImportEntry } from "../workspace/import/errors.js"

/** Arguments that do not match an operation's input schema: one `field: problem` per issue. */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

export class VmNotFound extends Data.TaggedError("VmNotFound")<{ readonly vmId: string }> {
  override get message() {
    return `no VM with vm_id ${this.vmId} (it may have been deleted, run its one vm_exec, or expired; vm_create makes a new one)`
  }
}

export class VmLimitReached extends Data.TaggedError("VmLimitReached")<{
  readonly limit: number
  readonly active: number
}> {
  override get message() {
    return `too many active VMs: ${this.active} of ${this.limit} allowed; delete a VM or workspace (vm_delete, workspace_delete) or raise PYRO_MAX_ACTIVE_VMS`
  }
}

export class WorkspaceNotFound extends Data.TaggedError("WorkspaceNotFound")<{ readonly workspaceId: string }> {
  override get message() {
    return `no workspace with workspace_id ${this.workspaceId} (it may have been deleted or expired; workspace_create makes a new one)`
  }
}

/** The guest could not unpack an import (disk full, a file in the way). */
export class WorkspaceImportFailed extends Data.TaggedError("WorkspaceImportFailed")<{
  readonly workspaceId: string
  readonly dest: string
  readonly detail: string
}> {
  override get message() {
    return `could not import into ${this.dest} in workspace ${this.workspaceId}: ${this.detail}`
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
  WorkspaceExportFailed: "workspace_export_failed"
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
