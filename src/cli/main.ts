/** The `pyro` command tree. */
import * as Command from "@effect/cli/Command"
import { doctorCommand } from "./doctor.js"
import { envCommand } from "./env.js"
import { mcpCommand } from "./mcp.js"
import { prepareCommand } from "./prepare.js"
import { runCommand } from "./run.js"
import { workspaceCommand } from "./workspace.js"
import { VERSION } from "./version.js"

export { VERSION }

export const pyro = Command.make("pyro").pipe(
  Command.withDescription("Disposable micro-VM sandboxes for coding agents"),
  Command.withSubcommands([runCommand, envCommand, workspaceCommand, prepareCommand, mcpCommand, doctorCommand])
)

export const cli = Command.run(pyro, { name: "pyro", version: VERSION })
