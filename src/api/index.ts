/**
 * Every public operation, family by family, in the order the MCP server lists
 * them. The MCP server, the SDK facade and the CLI derive from this table.
 */
import { vmListEnvironments } from "./environment.js"
import type { Operation } from "./operation.js"
import { vmCreate, vmDelete, vmExec, vmNetworkInfo, vmReapExpired, vmRun, vmStart, vmStatus, vmStop } from "./vm.js"
import { workspaceDiskExport, workspaceDiskList, workspaceDiskRead } from "./workspace/disk.js"
import { workspaceExec } from "./workspace/exec.js"
import { workspaceDiff, workspaceExport } from "./workspace/export.js"
import { workspaceFileList, workspaceFileRead, workspaceFileWrite, workspacePatchApply } from "./workspace/files.js"
import { workspaceCreate, workspaceDelete, workspaceLogs, workspaceStatus } from "./workspace/lifecycle.js"
import { workspaceList, workspaceSummary, workspaceUpdate } from "./workspace/manage.js"
import { serviceList, serviceLogs, serviceStart, serviceStatus, serviceStop } from "./workspace/services.js"
import { shellClose, shellOpen, shellRead, shellSignal, shellWrite } from "./workspace/shells.js"
import { snapshotCreate, snapshotDelete, snapshotList, workspaceFork, workspaceReset } from "./workspace/snapshots.js"
import { workspaceStart, workspaceStop } from "./workspace/stopStart.js"
import { workspaceSyncPush } from "./workspace/sync.js"

export * from "./environment.js"
export { type CallContext, hints, invoke, type Operation, operation, type OperationServices, type ToolAnnotations } from "./operation.js"
export * from "./vm.js"
export * from "./workspace/disk.js"
export * from "./workspace/exec.js"
export * from "./workspace/export.js"
export * from "./workspace/files.js"
export * from "./workspace/lifecycle.js"
export * from "./workspace/manage.js"
export * from "./workspace/services.js"
export * from "./workspace/shells.js"
export * from "./workspace/snapshots.js"
export * from "./workspace/stopStart.js"
export * from "./workspace/sync.js"

export const VM_OPERATIONS = [
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
] as const

export const WORKSPACE_OPERATIONS = [
  workspaceCreate,
  workspaceSyncPush,
  workspaceExec,
  workspaceStatus,
  workspaceLogs,
  workspaceList,
  workspaceUpdate,
  workspaceSummary,
  workspaceFileList,
  workspaceFileRead,
  workspaceFileWrite,
  workspacePatchApply,
  workspaceExport,
  workspaceDiff,
  serviceStart,
  serviceList,
  serviceStatus,
  serviceLogs,
  serviceStop,
  shellOpen,
  shellRead,
  shellWrite,
  shellSignal,
  shellClose,
  snapshotCreate,
  snapshotList,
  snapshotDelete,
  workspaceReset,
  workspaceFork,
  workspaceStop,
  workspaceStart,
  workspaceDiskList,
  workspaceDiskRead,
  workspaceDiskExport,
  workspaceDelete
] as const

/** Everything the MCP server serves, in the order it lists them. */
export const ALL_OPERATIONS: ReadonlyArray<Operation> = [...VM_OPERATIONS, ...WORKSPACE_OPERATIONS]
