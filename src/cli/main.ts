/** The `pyro` command tree: the operations' commands (derived from the table) and the operator's own. */
import * as Command from "@effect/cli/Command"
import { ALL_OPERATIONS } from "../api/index.js"
import { type AnyCommand, operationCommands } from "./derive.js"
import { doctorCommand } from "./doctor.js"
import { envCommand } from "./env.js"
import { hostCommand } from "./host.js"
import { mcpCommand } from "./mcp.js"
import { prepareCommand } from "./prepare.js"
import { shellAttachCommand } from "./shellAttach.js"
import { VERSION } from "./version.js"

export { VERSION }

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

const derived = operationCommands(ALL_OPERATIONS, GROUPS, { "workspace shell": [shellAttachCommand as unknown as AnyCommand] })
const derivedCommand = (name: string) => {
  const command = derived.get(name)
  if (!command) throw new Error(`no operation's CLI form is named ${name}`)
  return command
}

export const pyro = Command.make("pyro").pipe(
  Command.withDescription("Disposable micro-VM sandboxes for coding agents"),
  Command.withSubcommands([derivedCommand("run"), envCommand, derivedCommand("workspace"), prepareCommand, mcpCommand, hostCommand, doctorCommand])
)

export const cli = Command.run(pyro, { name: "pyro", version: VERSION })
