/**
 * The failures every public form (CLI, MCP, SDK) can report, as one tagged
 * union, and the stable `code` each is known by outside.
 */
import * as Data from "effect/Data"
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
  ImportSourceError: "invalid_import_source"
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
