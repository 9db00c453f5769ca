/**
 * Failures of the VM layer. The public ones (BootError, GuestChannelError)
 * are declared with the contract's errors and re-exported here for the
 * layer's own modules; GuestRequestFailed never leaves it.
 */
import * as Data from "effect/Data"
import type { BootError } from "../contract/errors.js"

export { BootError, type BootStage, type ChannelFailure, GuestChannelError } from "../contract/errors.js"

/**
 * QEMU was SIGKILLed before the VM was up: from outside (shutdown, Ctrl-C),
 * which says nothing about the VM's template.
 */
export const killedFromOutside = (e: BootError) => e.vmmExit?.signal === "SIGKILL"

/** The agent refused or failed a request (attach, sync). */
export class GuestRequestFailed extends Data.TaggedError("GuestRequestFailed")<{
  readonly request: string
  readonly stage: string
  readonly errno: number
  readonly detail: string
}> {
  override get message() {
    return `guest ${this.request} failed at ${this.stage}: ${this.detail}`
  }
}
