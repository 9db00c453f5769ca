/**
 * What each public operation does, in terms of the services. The MCP server
 * and the SDK facade both call `invoke`, which decodes input with the
 * operation's schema first.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { formatInputError } from "../contract/common.js"
import { InvalidInput, type PyroError } from "../contract/errors.js"
import * as Ops from "../contract/operations.js"
import { VmManager } from "../services/VmManager.js"
import { WorkspaceManager } from "../services/WorkspaceManager.js"

export type Handler<I, O> = (input: I) => Effect.Effect<O, PyroError, VmManager | WorkspaceManager>

const withVms = <I, O>(f: (vms: VmManager["Type"], input: I) => Effect.Effect<O, PyroError>): Handler<I, O> => (input) =>
  Effect.flatMap(VmManager, (vms) => f(vms, input))

const withWorkspaces =
  <I, O>(f: (ws: WorkspaceManager["Type"], input: I) => Effect.Effect<O, PyroError>): Handler<I, O> => (input) =>
    Effect.flatMap(WorkspaceManager, (ws) => f(ws, input))

/** Expired VMs and workspaces: one reaper for everything with a TTL. */
export const reapAll = Effect.gen(function*() {
  const vms = yield* (yield* VmManager).reapExpired
  const workspaces = yield* (yield* WorkspaceManager).reapExpired
  return { reaped: [...vms.reaped, ...workspaces.reaped], count: vms.count + workspaces.count }
})

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
  [Ops.vmReapExpired.tool]: () => reapAll,
  [Ops.workspaceCreate.tool]: withWorkspaces((ws, input: typeof Ops.workspaceCreate.input.Type) => ws.create(input)),
  [Ops.workspaceSyncPush.tool]: withWorkspaces((ws, input: typeof Ops.workspaceSyncPush.input.Type) => ws.syncPush(input)),
  [Ops.workspaceExec.tool]: withWorkspaces((ws, input: typeof Ops.workspaceExec.input.Type) => ws.exec(input)),
  [Ops.workspaceStatus.tool]: withWorkspaces((ws, input: typeof Ops.workspaceStatus.input.Type) => ws.status(input.workspace_id)),
  [Ops.workspaceLogs.tool]: withWorkspaces((ws, input: typeof Ops.workspaceLogs.input.Type) => ws.logs(input.workspace_id)),
  [Ops.workspaceDelete.tool]: withWorkspaces((ws, input: typeof Ops.workspaceDelete.input.Type) => ws.remove(input.workspace_id))
}

/** Decode `raw` with the operation's input schema (unknown properties refused), then run it. */
export const invoke = <O extends Ops.Operation>(
  op: O,
  raw: unknown
): Effect.Effect<O["output"]["Type"], PyroError, VmManager | WorkspaceManager> =>
  Effect.flatMap(
    Schema.decodeUnknown(op.input)(raw ?? {}, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => new InvalidInput({ detail: formatInputError(e) }))
    ),
    (input) => HANDLERS[op.tool]!(input)
  )
