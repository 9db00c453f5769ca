/**
 * The failures every public form (CLI, MCP, SDK) can report, as one tagged
 * union, and the stable `code` each is known by outside.
 */
import * as Data from "effect/Data"
import type { EnvironmentBuildFailed, EnvironmentNotFound, EnvironmentNotInstalled } from "../services/EnvironmentStore.js"
import type { KernelError } from "../services/KernelStore.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"

export class InvalidInput extends Data.TaggedError("InvalidInput")<{ readonly detail: string }> {
  override get message() {
    return `invalid input: ${this.detail}`
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
    return `too many active VMs: ${this.active} of ${this.limit} allowed; delete one (vm_delete) or raise PYRO_MAX_ACTIVE_VMS`
  }
}

export class VmStateConflict extends Data.TaggedError("VmStateConflict")<{
  readonly vmId: string
  readonly state: string
  readonly operation: string
}> {
  override get message() {
    return `cannot ${this.operation} VM ${this.vmId}: it is ${this.state}`
  }
}

export type PyroError =
  | InvalidInput
  | VmNotFound
  | VmLimitReached
  | VmStateConflict
  | EnvironmentNotFound
  | EnvironmentNotInstalled
  | EnvironmentBuildFailed
  | KernelError
  | BootError
  | GuestChannelError

const CODES: Record<PyroError["_tag"], string> = {
  InvalidInput: "invalid_input",
  VmNotFound: "vm_not_found",
  VmLimitReached: "vm_limit_reached",
  VmStateConflict: "vm_state_conflict",
  EnvironmentNotFound: "environment_not_found",
  EnvironmentNotInstalled: "environment_not_installed",
  EnvironmentBuildFailed: "environment_unavailable",
  KernelError: "kernel_unavailable",
  BootError: "boot_failed",
  GuestChannelError: "guest_channel_failed"
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
