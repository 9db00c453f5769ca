/** The vm_* family: one-shot runs and the create/start/exec/stop/delete lifecycle of a persistent VM. */
import * as Effect from "effect/Effect"
import { NoInput } from "../contract/environment.js"
import {
  ReapResult,
  VmCreateInput,
  VmDeleteResult,
  VmExecInput,
  VmExecResult,
  VmIdInput,
  VmInfo,
  VmNetworkInfo,
  VmRunInput,
  VmRunResult
} from "../contract/vm.js"
import { VmManager } from "../services/VmManager.js"
import { WorkspaceManager } from "../services/WorkspaceManager.js"
import { networkCli } from "./network.js"
import { hints, operation } from "./operation.js"

/** Expired VMs and workspaces: one reaper for everything with a TTL. */
export const reapAll = Effect.gen(function*() {
  const vms = yield* (yield* VmManager).reapExpired
  const workspaces = yield* (yield* WorkspaceManager).reapExpired
  return { reaped: [...vms.reaped, ...workspaces.reaped], count: vms.count + workspaces.count }
})

export const vmRun = operation({
  tool: "vm_run",
  sdkMethod: "runInVm",
  description:
    "Run one command in a fresh, disposable Linux micro-VM and return its stdout, stderr and exit code. " +
    "The VM is created, used once and destroyed automatically: nothing persists between calls. " +
    "`command` is a shell command line (run with /bin/sh -c) or an argv array. " +
    "The working directory is /workspace; the command runs as root. " +
    "A command still running after timeout_seconds is killed with its process group and reports exit_code 124. " +
    "Use vm_list_environments to see environment names (debian:12 has git and python3). " +
    "The guest has no network unless network_policy is egress (network: true is the same); allow_hosts then " +
    "limits it to those names, reached through an HTTP proxy the host runs.",
  input: VmRunInput,
  output: VmRunResult,
  carriesOutput: true,
  annotations: hints("Run a command in a fresh VM", false, false, false, true),
  handler: (input, context) => Effect.flatMap(VmManager, (vms) => Effect.map(vms.run(input, context), (o) => o.result)),
  cli: {
    path: ["run"],
    description: "Boot a fresh VM, run one command in it, print its output and exit with its exit code",
    optionHelp: networkCli.optionHelp,
    optionNames: networkCli.optionNames,
    args: [
      { field: "environment", name: "ENV", description: "Environment to boot, e.g. debian:12 or tiny" },
      {
        field: "command",
        name: "COMMAND",
        variadic: true,
        description: "The command and its arguments, after --; run directly, without a shell"
      }
    ],
    streamsOutput: true,
    human: () => ({}),
    exitCode: (result) => result.exit_code
  }
})

export const vmCreate = operation({
  tool: "vm_create",
  sdkMethod: "createVm",
  description: "Create a VM record without booting it (vm_start boots it). Returns vm_id, state \"created\", sizing, " +
    "created_at and expires_at: after ttl_seconds the VM is deleted by the reaper whatever its state. " +
    "Fails with vm_limit_reached when too many VMs are active.",
  input: VmCreateInput,
  output: VmInfo,
  annotations: hints("Create a VM", false, false, false),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.create(input))
})

export const vmStart = operation({
  tool: "vm_start",
  sdkMethod: "startVm",
  description: "Boot a created or stopped VM and wait until its guest agent is ready. Starting a started VM does nothing.",
  input: VmIdInput,
  output: VmInfo,
  sdkShorthand: "vm_id",
  annotations: hints("Start a VM", false, false, true),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.start(input.vm_id))
})

export const vmExec = operation({
  tool: "vm_exec",
  sdkMethod: "execVm",
  description: "Run one command in a VM (booting it first if needed) and return stdout, stderr and exit_code. " +
    "The VM is deleted after this one command, whatever its outcome: for several commands in one machine, " +
    "use a workspace instead.",
  input: VmExecInput,
  output: VmExecResult,
  carriesOutput: true,
  annotations: hints("Run a command in a VM, then delete it", false, true, false, true),
  handler: (input, context) => Effect.flatMap(VmManager, (vms) => vms.exec(input, context))
})

export const vmStop = operation({
  tool: "vm_stop",
  sdkMethod: "stopVm",
  description: "Power a started VM off (the guest gets a few seconds to flush its disk). Its record and disk stay until vm_delete or expiry.",
  input: VmIdInput,
  output: VmInfo,
  sdkShorthand: "vm_id",
  annotations: hints("Stop a VM", false, false, true),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.stop(input.vm_id))
})

export const vmDelete = operation({
  tool: "vm_delete",
  sdkMethod: "deleteVm",
  description: "Delete a VM: kill it if running and remove its record and disk.",
  input: VmIdInput,
  output: VmDeleteResult,
  sdkShorthand: "vm_id",
  annotations: hints("Delete a VM", false, true, false),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.remove(input.vm_id))
})

export const vmStatus = operation({
  tool: "vm_status",
  sdkMethod: "statusVm",
  description: "A VM's state (created, started, stopped), sizing, network_policy, allow_hosts, execution_mode and expiry.",
  input: VmIdInput,
  output: VmInfo,
  sdkShorthand: "vm_id",
  annotations: hints("VM status", true, false, true),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.status(input.vm_id))
})

export const vmNetworkInfo = operation({
  tool: "vm_network_info",
  sdkMethod: "networkInfoVm",
  description: "A VM's network as its guest sees it: network_policy, allow_hosts, interface, guest address, " +
    "gateway, DNS, the proxy (with allow_hosts) and how many connections it refused (refused_count, the latest in " +
    "refused_recent), and host_alias, always null: the guest cannot reach the host.",
  input: VmIdInput,
  output: VmNetworkInfo,
  sdkShorthand: "vm_id",
  annotations: hints("VM network facts", true, false, true),
  handler: (input) => Effect.flatMap(VmManager, (vms) => vms.networkInfo(input.vm_id))
})

export const vmReapExpired = operation({
  tool: "vm_reap_expired",
  sdkMethod: "reapExpired",
  description: "Delete every VM and workspace whose expires_at has passed and list what was removed.",
  input: NoInput,
  output: ReapResult,
  annotations: hints("Reap expired VMs", false, true, true),
  handler: () => reapAll
})
