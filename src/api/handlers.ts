/**
 * What each public operation does, in terms of the services. The MCP server
 * and the SDK facade both call these, after decoding input with the
 * operation's schema.
 */
import * as Effect from "effect/Effect"
import type { PyroError } from "../contract/errors.js"
import * as Ops from "../contract/operations.js"
import { VmManager } from "../services/VmManager.js"

export type Handler<I, O> = (input: I) => Effect.Effect<O, PyroError, VmManager>

const withVms = <I, O>(f: (vms: VmManager["Type"], input: I) => Effect.Effect<O, PyroError>): Handler<I, O> => (input) =>
  Effect.flatMap(VmManager, (vms) => f(vms, input))

export const HANDLERS: Record<string, Handler<any, any>> = {
  [Ops.vmRun.tool]: withVms((vms, input: typeof Ops.vmRun.input.Type) => Effect.map(vms.run(input), (o) => o.result)),
  [Ops.vmListEnvironments.tool]: withVms((vms) => Effect.map(vms.listEnvironments, (environments) => ({ environments }))),
  [Ops.vmCreate.tool]: withVms((vms, input: typeof Ops.vmCreate.input.Type) => vms.create(input)),
  [Ops.vmStart.tool]: withVms((vms, input: typeof Ops.vmStart.input.Type) => vms.start(input.vm_id)),
  [Ops.vmExec.tool]: withVms((vms, input: typeof Ops.vmExec.input.Type) => vms.exec(input)),
  [Ops.vmStop.tool]: withVms((vms, input: typeof Ops.vmStop.input.Type) => vms.stop(input.vm_id)),
  [Ops.vmDelete.tool]: withVms((vms, input: typeof Ops.vmDelete.input.Type) => vms.remove(input.vm_id)),
  [Ops.vmStatus.tool]: withVms((vms, input: typeof Ops.vmStatus.input.Type) => vms.status(input.vm_id)),
  [Ops.vmNetworkInfo.tool]: withVms((vms, input: typeof Ops.vmNetworkInfo.input.Type) => vms.networkInfo(input.vm_id)),
  [Ops.vmReapExpired.tool]: withVms((vms) => vms.reapExpired)
}
