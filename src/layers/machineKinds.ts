/**
 * Every kind of machine record kept in the state directory: what the active-VM
 * limit (src/machine/limit.ts) counts, whichever manager checks it. Put together
 * here, above the managers, so the limit needs to know none of them.
 */
import type { MachineKind } from "../machine/limit.js"
import { persistentVms } from "../vm/record.js"
import { ephemeralVms } from "../vm/vmDir.js"
import { workspaces } from "../workspace/store.js"

export const machineKinds: ReadonlyArray<MachineKind> = [ephemeralVms, persistentVms, workspaces]
