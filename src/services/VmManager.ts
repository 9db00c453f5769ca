/** The vm_* operations: one-shot runs and the create/start/exec/stop/delete lifecycle. */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { InvalidInput, VmLimitReached, VmNotFound } from "../contract/errors.js"
import type {
  ReapResult,
  VmCreateInput,
  VmDeleteResult,
  VmExecInput,
  VmExecResult,
  VmInfo,
  VmNetworkInfo,
  VmRunInput,
  VmRunResult
} from "../contract/vm.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"
import type { OutputSink } from "../vm/execCommand.js"
import type { EnvironmentError, EnvironmentInfo } from "./EnvironmentStore.js"
import type { KernelError } from "./KernelStore.js"

/** InvalidInput: a size this host cannot give, or a host fallback the operator did not allow. */
export type RunError = EnvironmentError | KernelError | BootError | GuestChannelError | VmLimitReached | InvalidInput

export type LifecycleError = RunError | VmNotFound

export interface RunOptions {
  /** Called with output as it arrives (the CLI streams it to the terminal). */
  readonly onOutput?: OutputSink
  /** Take a ready spare VM of the run's shape if there is one (default); false: boot one (doctor's check). */
  readonly useSpare?: boolean
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
  /**
   * Keep this many spare VMs of each vm_run shape this process runs (0: none,
   * the default, or PYRO_SPARES): a spare serves a run in milliseconds, and is
   * replaced in the background (src/vm/spares/).
   */
  readonly setWarmPool: (size: number) => Effect.Effect<void>
  readonly listEnvironments: Effect.Effect<ReadonlyArray<EnvironmentInfo>>
  /** Record a VM (its environment installed, the active limit checked); nothing boots yet. */
  readonly create: (input: VmCreateInput) => Effect.Effect<VmInfo, RunError>
  readonly start: (vmId: string) => Effect.Effect<VmInfo, LifecycleError>
  /** Run one command (starting the VM if needed), then delete the VM. */
  readonly exec: (input: VmExecInput, options?: RunOptions) => Effect.Effect<VmExecResult, LifecycleError>
  readonly stop: (vmId: string) => Effect.Effect<VmInfo, LifecycleError>
  readonly remove: (vmId: string) => Effect.Effect<VmDeleteResult, VmNotFound>
  readonly status: (vmId: string) => Effect.Effect<VmInfo, VmNotFound>
  readonly networkInfo: (vmId: string) => Effect.Effect<VmNetworkInfo, VmNotFound>
  readonly list: Effect.Effect<ReadonlyArray<VmInfo>>
  /** Delete every VM whose expires_at has passed. */
  readonly reapExpired: Effect.Effect<ReapResult>
}>() {}
