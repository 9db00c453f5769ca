/** Failures of the VM layer. Each names where it arose; `message` is the one line users see. */
import * as Data from "effect/Data"
import type { ProcessExit } from "./qemu/process.js"

export type BootStage = "Prepare" | "Spawn" | "Kernel" | "AgentHandshake" | "Timeout" | "Attach" | "Restore" | "Template"

export class BootError extends Data.TaggedError("BootError")<{
  readonly stage: BootStage
  readonly detail: string
  /** Last lines QEMU wrote on stderr. */
  readonly vmmStderr?: string
  /** Last lines of the guest console (kernel and agent messages). */
  readonly console?: string
  /** How QEMU ended, when the boot failed because it did. */
  readonly vmmExit?: ProcessExit
}> {
  override get message() {
    const tails = [
      this.vmmStderr ? `\n--- qemu stderr ---\n${this.vmmStderr.trimEnd()}` : "",
      this.console ? `\n--- guest console ---\n${this.console.trimEnd()}` : ""
    ].join("")
    return `VM boot failed (${this.stage}): ${this.detail}${tails}`
  }
}

/**
 * QEMU was SIGKILLed before the VM was up: from outside (shutdown, Ctrl-C),
 * which says nothing about the VM's template.
 */
export const killedFromOutside = (e: BootError) => e.vmmExit?.signal === "SIGKILL"

/** Busy: every host channel of the VM is leased by another process (src/workspace/channels.ts). */
export type ChannelFailure = "Closed" | "Protocol" | "Transport" | "Unresponsive" | "Busy"

/** The guest channel is unusable: closed, broken by a malformed frame, or silent. */
export class GuestChannelError extends Data.TaggedError("GuestChannelError")<{
  readonly reason: ChannelFailure
  readonly detail: string
}> {
  override get message() {
    return `guest channel ${this.reason.toLowerCase()}: ${this.detail}`
  }
}

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
