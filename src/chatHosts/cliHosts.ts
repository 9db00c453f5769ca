/**
 * The hosts that register MCP servers with a CLI of their own (Claude Code's
 * `claude mcp`, Codex's `codex mcp`): the argv that adds pyro, and the one
 * that asks whether it is there. pyro runs the host's own CLI rather than
 * editing its files, so each host keeps its format and scopes to itself.
 */
import { SERVER_KEY, type ServerLaunch } from "./launch.js"

export const CLI_HOSTS = ["claude-code", "codex"] as const
export type CliHost = (typeof CLI_HOSTS)[number]

/** Claude Code's scopes: this project for you alone, every project of yours, or the project's .mcp.json. */
export const CLAUDE_SCOPES = ["local", "user", "project"] as const
export type ClaudeScope = (typeof CLAUDE_SCOPES)[number]

interface CliHostSpec {
  /** The executable on PATH. */
  readonly bin: string
  /** Run first, its failure ignored: `claude mcp add` refuses a name it already has. */
  readonly removeFirst?: (scope: ClaudeScope | undefined) => ReadonlyArray<string>
  readonly add: (launch: ServerLaunch, scope: ClaudeScope | undefined) => ReadonlyArray<string>
  /** Exits 0 with pyro's entry when it is registered, non-zero when not. */
  readonly get: ReadonlyArray<string>
  readonly takesScope: boolean
}

const scoped = (scope: ClaudeScope | undefined) => (scope ? ["--scope", scope] : [])

export const CLI_HOST_SPECS: Readonly<Record<CliHost, CliHostSpec>> = {
  "claude-code": {
    bin: "claude",
    removeFirst: (scope) => ["mcp", "remove", ...scoped(scope ?? "local"), SERVER_KEY],
    add: (launch, scope) => ["mcp", "add", ...scoped(scope), SERVER_KEY, "--", launch.command, ...launch.args],
    // Also starts the server and reports whether it connected.
    get: ["mcp", "get", SERVER_KEY],
    takesScope: true
  },
  // `codex mcp add` replaces an entry of the same name in ~/.codex/config.toml.
  codex: {
    bin: "codex",
    add: (launch) => ["mcp", "add", SERVER_KEY, "--", launch.command, ...launch.args],
    get: ["mcp", "get", SERVER_KEY, "--json"],
    takesScope: false
  }
}

/** What `get` printed, reduced to the command pyro is started with and the host's own verdict. */
export const describeRegistration = (host: CliHost, stdout: string): { readonly command?: string; readonly status?: string } => {
  if (host === "codex") {
    try {
      const transport = (JSON.parse(stdout) as { transport?: { command?: string; args?: Array<string> } }).transport
      return transport?.command ? { command: [transport.command, ...(transport.args ?? [])].join(" ") } : {}
    } catch {
      return {}
    }
  }
  const field = (name: string) => stdout.match(new RegExp(`^\\s*${name}:[ \\t]*(.*)$`, "m"))?.[1]?.trim()
  const command = [field("Command"), field("Args")].filter((s) => s).join(" ")
  const status = field("Status")
  return { ...(command ? { command } : {}), ...(status ? { status } : {}) }
}
