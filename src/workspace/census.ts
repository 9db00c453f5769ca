/**
 * Workspaces as the active-VM limit counts them (src/layers/machineKinds.ts): a
 * workspace holds a slot while its VM runs or is being booted. Only the field that
 * says so is decoded: the census runs before every boot, and in the lean `pyro run`,
 * neither of which needs the rest of a workspace's record (or its schemas' start-up cost).
 */
import * as Schema from "effect/Schema"
import { machineKind } from "../machine/limit.js"
import { MachineRecordFields, vmmAlive } from "../machine/record.js"
import { workspacePaths, workspacesRoot } from "./paths.js"

const HoldsSlotFields = Schema.parseJson(Schema.Struct({ vmm: MachineRecordFields.vmm }))
const decode = Schema.decodeUnknownOption(HoldsSlotFields)

export const workspaceMachines = machineKind({
  root: workspacesRoot,
  paths: workspacePaths,
  decode: (text: string) => decode(text),
  holdsSlot: (record, claimed) => vmmAlive(record) || claimed()
})
