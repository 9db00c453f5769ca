/** workspace_stop and workspace_start: a workspace's VM powered off with its disk kept, and booted on it again. */
import * as Effect from "effect/Effect"
import { WorkspaceIdInput, WorkspaceSummary } from "../../contract/workspace/lifecycle.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { hints, operation } from "../operation.js"
import { workspaceIdArg } from "./args.js"
import { formatSummary } from "./lifecycle.js"

export const workspaceStop = operation({
  tool: "workspace_stop",
  sdkMethod: "stopWorkspace",
  description: "Stop a workspace's VM and keep everything on its disk: the guest's disk is synced and its filesystem " +
    "left clean, then the VM powers off (killed after a 5 s grace). Its published ports close, and commands in flight, " +
    "shells and services end with it; the journal, secrets and diff baseline stay. A stopped workspace holds no slot " +
    "of the active-VM limit. workspace_disk_list/read/export read its disk; workspace_start (or the next exec) boots " +
    "it again. Stopping a stopped workspace does nothing. Returns the summary (state \"stopped\").",
  input: WorkspaceIdInput,
  output: WorkspaceSummary,
  sdkShorthand: "workspace_id",
  annotations: hints("Stop a workspace", false, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.stop(input.workspace_id)),
  cli: { path: ["workspace", "stop"], description: "Stop a workspace's VM, keeping its disk", args: [workspaceIdArg], human: formatSummary }
})

export const workspaceStart = operation({
  tool: "workspace_start",
  sdkMethod: "startWorkspace",
  description: "Boot a stopped workspace's VM on its disk: /workspace and every other file it wrote are as they were, " +
    "its secrets are put back; no shell or service is running. A started workspace is left as it is. Returns the " +
    "summary (state \"started\").",
  input: WorkspaceIdInput,
  output: WorkspaceSummary,
  sdkShorthand: "workspace_id",
  annotations: hints("Start a workspace", false, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.start(input.workspace_id)),
  cli: { path: ["workspace", "start"], description: "Boot a stopped workspace's VM on its disk", args: [workspaceIdArg], human: formatSummary }
})
