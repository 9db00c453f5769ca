/** `pyro workspace …`: the workspace operations' commands (derived from the table) and shell attach. */
import { WORKSPACE_OPERATIONS } from "../api/index.js"
import { type AnyCommand, operationCommands } from "./derive.js"
import { shellAttachCommand } from "./shellAttach.js"

/** What each command group is for; `pyro workspace --help` shows it. */
const GROUPS = {
  workspace: { description: "Persistent workspaces: a VM whose /workspace keeps its files between commands" },
  "workspace sync": { description: "Move files between the host and a workspace" },
  "workspace file": { description: "Model-native tree inspection and text edits under /workspace" },
  "workspace patch": { description: "Apply unified diffs under /workspace" },
  "workspace service": { description: "Long-running services in a workspace: start (with readiness), list, status, logs, stop" },
  "workspace shell": { description: "Interactive shells a workspace keeps, for any client to come back to" },
  "workspace disk": { description: "A stopped workspace's disk, read offline: list, read, export (secondary tools)" },
  "workspace snapshot": { description: "Named states of a workspace's disk: create, list, delete (workspace reset goes back to one)" }
}

const derived = operationCommands(WORKSPACE_OPERATIONS, GROUPS, { "workspace shell": [shellAttachCommand as unknown as AnyCommand] })

export const workspaceCommand = derived.get("workspace")!
