/** Environments as tools see them: the list of what VMs can boot. */
import * as Effect from "effect/Effect"
import { EnvironmentList, NoInput } from "../contract/environment.js"
import { VmManager } from "../services/VmManager.js"
import { hints, operation } from "./operation.js"

export const vmListEnvironments = operation({
  tool: "vm_list_environments",
  sdkMethod: "listEnvironments",
  description: "List the environments (root filesystems) VMs can boot, with their default packages and whether each is installed locally. " +
    "Environments that are not installed are built or downloaded on first use, which takes a while once.",
  input: NoInput,
  output: EnvironmentList,
  annotations: hints("List environments", true, false, true),
  handler: () => Effect.flatMap(VmManager, (vms) => Effect.map(vms.listEnvironments, (environments) => ({ environments })))
})
