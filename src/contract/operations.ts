/**
 * Every public operation once: its MCP tool name, SDK method name, a
 * description an LLM can act on, input and output schemas, and MCP tool
 * annotations. The MCP server, the SDK and the docs derive from this table.
 */
import type * as Schema from "effect/Schema"
import { EnvironmentList, NoInput } from "./environment.js"
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
} from "./vm.js"
import {
  WorkspaceCreateInput,
  WorkspaceDeleteResult,
  WorkspaceExecInput,
  WorkspaceExecResult,
  WorkspaceIdInput,
  WorkspaceLogs,
  WorkspaceSummary,
  WorkspaceSyncPushInput,
  WorkspaceSyncResult
} from "./workspace.js"

export interface ToolAnnotations {
  readonly title: string
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  /** Whether the tool reaches beyond pyro's own state (a guest with network does). */
  readonly openWorldHint: boolean
}

export interface Operation<I = any, O = any> {
  readonly tool: string
  readonly sdkMethod: string
  readonly description: string
  readonly input: Schema.Schema<I, any>
  readonly output: Schema.Schema<O, any>
  readonly annotations: ToolAnnotations
  /**
   * The result carries a command's output. MCP sends it once, as JSON text,
   * without structuredContent (and so without an outputSchema): the output
   * would otherwise travel twice in one message.
   */
  readonly carriesOutput?: true
}

const op = <I, II, O, OI>(o: {
  tool: string
  sdkMethod: string
  description: string
  input: Schema.Schema<I, II>
  output: Schema.Schema<O, OI>
  annotations: ToolAnnotations
  carriesOutput?: true
}): Operation<I, O> => o

const hints = (
  title: string,
  readOnly: boolean,
  destructive: boolean,
  idempotent: boolean,
  openWorld = false
): ToolAnnotations => ({ title, readOnlyHint: readOnly, destructiveHint: destructive, idempotentHint: idempotent, openWorldHint: openWorld })

export const vmRun = op({
  tool: "vm_run",
  sdkMethod: "runInVm",
  description:
    "Run one command in a fresh, disposable Linux micro-VM and return its stdout, stderr and exit code. " +
    "The VM is created, used once and destroyed automatically: nothing persists between calls. " +
    "`command` is a shell command line (run with /bin/sh -c) or an argv array. " +
    "The working directory is /workspace; the command runs as root. " +
    "A command still running after timeout_seconds is killed with its process group and reports exit_code 124. " +
    "Use vm_list_environments to see environment names (debian:12 has git and python3). " +
    "The guest has no network unless network is true.",
  input: VmRunInput,
  output: VmRunResult,
  carriesOutput: true,
  annotations: hints("Run a command in a fresh VM", false, false, false, true)
})

export const vmListEnvironments = op({
  tool: "vm_list_environments",
  sdkMethod: "listEnvironments",
  description: "List the environments (root filesystems) VMs can boot, with their default packages and whether each is installed locally. " +
    "Environments that are not installed are built or downloaded on first use, which takes a while once.",
  input: NoInput,
  output: EnvironmentList,
  annotations: hints("List environments", true, false, true)
})

export const vmCreate = op({
  tool: "vm_create",
  sdkMethod: "createVm",
  description: "Create a VM record without booting it (vm_start boots it). Returns vm_id, state \"created\", sizing, " +
    "created_at and expires_at: after ttl_seconds the VM is deleted by the reaper whatever its state. " +
    "Fails with vm_limit_reached when too many VMs are active.",
  input: VmCreateInput,
  output: VmInfo,
  annotations: hints("Create a VM", false, false, false)
})

export const vmStart = op({
  tool: "vm_start",
  sdkMethod: "startVm",
  description: "Boot a created or stopped VM and wait until its guest agent is ready. Starting a started VM does nothing.",
  input: VmIdInput,
  output: VmInfo,
  annotations: hints("Start a VM", false, false, true)
})

export const vmExec = op({
  tool: "vm_exec",
  sdkMethod: "execVm",
  description: "Run one command in a VM (booting it first if needed) and return stdout, stderr and exit_code. " +
    "The VM is deleted after this one command, whatever its outcome: for several commands in one machine, " +
    "use a workspace instead.",
  input: VmExecInput,
  output: VmExecResult,
  carriesOutput: true,
  annotations: hints("Run a command in a VM, then delete it", false, true, false, true)
})

export const vmStop = op({
  tool: "vm_stop",
  sdkMethod: "stopVm",
  description: "Power a started VM off (the guest gets a few seconds to flush its disk). Its record and disk stay until vm_delete or expiry.",
  input: VmIdInput,
  output: VmInfo,
  annotations: hints("Stop a VM", false, false, true)
})

export const vmDelete = op({
  tool: "vm_delete",
  sdkMethod: "deleteVm",
  description: "Delete a VM: kill it if running and remove its record and disk.",
  input: VmIdInput,
  output: VmDeleteResult,
  annotations: hints("Delete a VM", false, true, false)
})

export const vmStatus = op({
  tool: "vm_status",
  sdkMethod: "statusVm",
  description: "A VM's state (created, started, stopped), sizing, network_enabled, execution_mode and expiry.",
  input: VmIdInput,
  output: VmInfo,
  annotations: hints("VM status", true, false, true)
})

export const vmNetworkInfo = op({
  tool: "vm_network_info",
  sdkMethod: "networkInfoVm",
  description: "A VM's network as its guest sees it: whether enabled, interface, guest address, gateway, DNS, " +
    "and host_alias, always null: the guest cannot reach the host.",
  input: VmIdInput,
  output: VmNetworkInfo,
  annotations: hints("VM network facts", true, false, true)
})

export const vmReapExpired = op({
  tool: "vm_reap_expired",
  sdkMethod: "reapExpired",
  description: "Delete every VM and workspace whose expires_at has passed and list what was removed.",
  input: NoInput,
  output: ReapResult,
  annotations: hints("Reap expired VMs", false, true, true)
})

export const workspaceCreate = op({
  tool: "workspace_create",
  sdkMethod: "createWorkspace",
  description: "Create a persistent workspace: a Linux VM whose /workspace (and every other file it writes) survives " +
    "between commands, until workspace_delete or ttl_seconds after creation. Optionally seeded from a host directory or " +
    ".tar/.tar.gz/.tgz (seed_path), copied in before this returns. Returns workspace_id for workspace_exec.",
  input: WorkspaceCreateInput,
  output: WorkspaceSummary,
  annotations: hints("Create a workspace", false, false, false, true)
})

export const workspaceSyncPush = op({
  tool: "workspace_sync_push",
  sdkMethod: "pushWorkspaceSync",
  description: "Copy a host directory or .tar/.tar.gz/.tgz archive into the workspace at dest (default /workspace; must stay " +
    "under /workspace). Existing files are overwritten, others kept. Unsafe entries (absolute paths, .., links leaving the " +
    "destination, devices) are refused before anything is copied; setuid bits are cleared.",
  input: WorkspaceSyncPushInput,
  output: WorkspaceSyncResult,
  annotations: hints("Copy files into a workspace", false, false, true)
})

export const workspaceExec = op({
  tool: "workspace_exec",
  sdkMethod: "execWorkspace",
  description: "Run a command in a workspace, in /workspace, and return stdout, stderr, exit_code and its sequence number. " +
    "Files persist for later commands; commands on one workspace run one at a time. " +
    "A command still running after timeout_seconds is killed and reports exit_code 124.",
  input: WorkspaceExecInput,
  output: WorkspaceExecResult,
  carriesOutput: true,
  annotations: hints("Run a command in a workspace", false, false, false, true)
})

export const workspaceStatus = op({
  tool: "workspace_status",
  sdkMethod: "statusWorkspace",
  description: "A workspace's summary: environment, state, sizing, command_count, last_command, seed, expiry.",
  input: WorkspaceIdInput,
  output: WorkspaceSummary,
  annotations: hints("Workspace status", true, false, true)
})

export const workspaceLogs = op({
  tool: "workspace_logs",
  sdkMethod: "logsWorkspace",
  description: "Every command run in a workspace, in order, with its result (output kept up to 64 KiB per stream per entry).",
  input: WorkspaceIdInput,
  output: WorkspaceLogs,
  carriesOutput: true,
  annotations: hints("Workspace command journal", true, false, true)
})

export const workspaceDelete = op({
  tool: "workspace_delete",
  sdkMethod: "deleteWorkspace",
  description: "Delete a workspace: stop its VM and remove its disk, files and journal. Deleting one already gone succeeds.",
  input: WorkspaceIdInput,
  output: WorkspaceDeleteResult,
  annotations: hints("Delete a workspace", false, true, true)
})

export const WORKSPACE_OPERATIONS: ReadonlyArray<Operation> = [
  workspaceCreate,
  workspaceSyncPush,
  workspaceExec,
  workspaceStatus,
  workspaceLogs,
  workspaceDelete
]

export const VM_OPERATIONS: ReadonlyArray<Operation> = [
  vmRun,
  vmListEnvironments,
  vmCreate,
  vmStart,
  vmExec,
  vmStop,
  vmDelete,
  vmStatus,
  vmNetworkInfo,
  vmReapExpired
]

/** Everything the MCP server serves, in the order it lists them. */
export const ALL_OPERATIONS: ReadonlyArray<Operation> = [...VM_OPERATIONS, ...WORKSPACE_OPERATIONS]
