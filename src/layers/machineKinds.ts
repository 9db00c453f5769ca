/**
 * Every kind of machine record kept in the state directory: what the active-VM
 * limit (src/machine/limit.ts) counts, whichever manager checks it. Put together
 * here, above the managers, so the limit needs to know none of them.
 */
import type { MachineKind, OutsideLimit } from "../machine/limit.js"
import { countSpares } from "../vm/spares/store.js"
import { persistentVms } from "../vm/record.js"
import { ephemeralVms } from "../vm/vmDir.js"
import { workspaceMachines } from "../workspace/census.js"

export const machineKinds: ReadonlyArray<MachineKind> = [ephemeralVms, persistentVms, workspaceMachines]

/** Spare VMs: outside the limit, told in its error. */
export const outsideLimit: OutsideLimit = countSpares
