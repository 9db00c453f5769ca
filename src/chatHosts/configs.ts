/**
 * MCP configuration files of the hosts that take one (no CLI of their own to
 * register a server): each host's documented format, and where it reads it.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import { SERVER_KEY, type ServerLaunch } from "./launch.js"

export const CONFIG_HOSTS = ["opencode", "cursor", "vscode", "claude-desktop"] as const
export type ConfigHost = (typeof CONFIG_HOSTS)[number]

interface ConfigFormat {
  /** The object holding servers by name. */
  readonly serversKey: string
  /** The files the host reads, project first (relative to the project), then the user's. */
  readonly files: (home: string) => ReadonlyArray<string>
  readonly entry: (launch: ServerLaunch) => Record<string, unknown>
  /** Fields the file itself has beside the servers. */
  readonly preamble?: Record<string, unknown>
}

const commandAndArgs = (launch: ServerLaunch) => ({ command: launch.command, args: [...launch.args] })

export const CONFIG_FORMATS: Readonly<Record<ConfigHost, ConfigFormat>> = {
  // opencode.ai/docs/mcp-servers: one `command` array, "type": "local"; JSONC allowed.
  opencode: {
    serversKey: "mcp",
    files: (home) => [
      "opencode.json",
      "opencode.jsonc",
      Path.join(home, ".config", "opencode", "opencode.json"),
      Path.join(home, ".config", "opencode", "opencode.jsonc")
    ],
    entry: (launch) => ({ type: "local", command: [launch.command, ...launch.args], enabled: true }),
    preamble: { $schema: "https://opencode.ai/config.json" }
  },
  // docs.cursor.com: `mcpServers`, in the project or the user's ~/.cursor.
  cursor: {
    serversKey: "mcpServers",
    files: (home) => [Path.join(".cursor", "mcp.json"), Path.join(home, ".cursor", "mcp.json")],
    entry: commandAndArgs
  },
  // code.visualstudio.com: `servers` (not mcpServers), each with its type.
  vscode: {
    serversKey: "servers",
    files: () => [Path.join(".vscode", "mcp.json")],
    entry: (launch) => ({ type: "stdio", ...commandAndArgs(launch) })
  },
  // modelcontextprotocol.io quickstart: claude_desktop_config.json, `mcpServers`.
  "claude-desktop": {
    serversKey: "mcpServers",
    files: (home) => [
      Path.join(home, ".config", "Claude", "claude_desktop_config.json"),
      Path.join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json")
    ],
    entry: commandAndArgs
  }
}

/** The whole file a host needs to start pyro, as JSON text. */
export const hostConfigText = (host: ConfigHost, launch: ServerLaunch): string => {
  const format = CONFIG_FORMATS[host]
  return JSON.stringify({ ...format.preamble, [format.serversKey]: { [SERVER_KEY]: format.entry(launch) } }, null, 2) + "\n"
}

/** Where the host looks for the file, for the message beside the printed config. */
export const hostConfigFiles = (host: ConfigHost, home = Os.homedir()): ReadonlyArray<string> =>
  CONFIG_FORMATS[host].files(home)

/**
 * `text` with what lies outside its strings rewritten by `rewrite`, which is
 * handed the text from an index and returns what to emit and how far it read.
 */
const outsideStrings = (text: string, rewrite: (text: string, i: number) => readonly [string, number]): string => {
  let out = ""
  for (let i = 0; i < text.length;) {
    if (text[i] === "\"") {
      const start = i
      for (i++; i < text.length && text[i] !== "\""; i++) if (text[i] === "\\") i++
      out += text.slice(start, ++i)
    } else {
      const [emit, next] = rewrite(text, i)
      out += emit
      i = next
    }
  }
  return out
}

/** JSON with comments and trailing commas (JSONC, as OpenCode and VS Code allow it) read as JSON. */
export const parseJsonc = (text: string): unknown => {
  const uncommented = outsideStrings(text, (t, i) => {
    if (t.startsWith("//", i)) {
      const end = t.indexOf("\n", i)
      return ["\n", end < 0 ? t.length : end + 1]
    }
    if (t.startsWith("/*", i)) {
      const end = t.indexOf("*/", i + 2)
      return [" ", end < 0 ? t.length : end + 2]
    }
    return [t[i]!, i + 1]
  })
  const trimmed = outsideStrings(uncommented, (t, i) => [t[i] === "," && /^\s*[}\]]/.test(t.slice(i + 1)) ? "" : t[i]!, i + 1])
  return JSON.parse(trimmed)
}

/** The pyro entry of a parsed config file, if it has one. */
export const registeredEntry = (host: ConfigHost, config: unknown): Record<string, unknown> | undefined => {
  const servers = (config as Record<string, unknown> | null)?.[CONFIG_FORMATS[host].serversKey]
  const entry = (servers as Record<string, unknown> | undefined)?.[SERVER_KEY]
  return entry !== null && typeof entry === "object" ? entry as Record<string, unknown> : undefined
}

/** The command line an entry starts, whichever host's shape it has. */
export const entryLaunch = (entry: Record<string, unknown>): ServerLaunch | undefined => {
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string") ? v as Array<string> : undefined
  const command = entry["command"]
  if (typeof command === "string") return { command, args: strings(entry["args"]) ?? [] }
  const words = strings(command)
  return words && words.length > 0 ? { command: words[0]!, args: words.slice(1) } : undefined
}
