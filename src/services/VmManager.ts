/** The vm_* operations. */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { VmRunInput, VmRunResult } from "../contract/vm.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"
import type { OutputSink } from "../vm/execCommand.js"
import type { EnvironmentError } from "./EnvironmentStore.js"
import type { KernelError } from "./KernelStore.js"

export type RunError = EnvironmentError | KernelError | BootError | GuestChannelError

export interface RunOptions {
  /** Called with output as it arrives (the CLI streams it to the terminal). */
  readonly onOutput?: OutputSink
}

export interface RunOutcome {
  readonly result: VmRunResult
  /** The exact bytes, up to the output cap (the result's strings are UTF-8 decoded). */
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
}

export class VmManager extends Context.Tag("pyro/VmManager")<VmManager, {
  /** Boot a VM, run one command, and tear the VM down whatever happens. */
  readonly run: (input: VmRunInput, options?: RunOptions) => Effect.Effect<RunOutcome, RunError>
}>() {}
