/**
 * `pyro host doctor`: is pyro registered with the chat hosts found here, does
 * `pyro mcp serve` start, and does one tool call through a real MCP client
 * work. Each problem comes with the command that fixes it.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { runHostCommand } from "../host/command.js"
import { which } from "../host/which.js"
import { CLI_HOST_SPECS, CLI_HOSTS, describeRegistration } from "./cliHosts.js"
import { CONFIG_HOSTS, entryLaunch, hostConfigFiles, parseJsonc, registeredEntry } from "./configs.js"
import { commandLine, SERVER_KEY, serverLaunch } from "./launch.js"

export interface HostEntry {
  readonly host: string
  /** The host's CLI or the config file looked at; null when neither is here. */
  readonly where: string | null
  readonly registered: boolean
  /** The command line the host starts pyro with. */
  readonly command: string | null
  /** The host's own verdict on the server, when it gives one (Claude Code: "✔ Connected"). */
  readonly status: string | null
  readonly error: string | null
}

export interface ServerCheck {
  readonly command: string
  readonly started: boolean
  readonly startup_ms: number | null
  readonly tools: ReadonlyArray<string>
  readonly tool_call: { readonly tool: string; readonly ok: boolean; readonly detail: string }
  readonly error: string | null
}

export interface HostDoctorReport {
  readonly hosts: ReadonlyArray<HostEntry>
  readonly server: ServerCheck
  readonly issues: ReadonlyArray<{ readonly problem: string; readonly fix: string }>
  readonly ok: boolean
}

/** The read-only tool every profile but vm-run serves, and the one doctor calls. */
const CHECK_TOOL = "vm_list_environments"
/** A host CLI that has not answered by then is reported as failing, not waited on. */
const HOST_CLI_TIMEOUT = "60 seconds"
const SERVER_TIMEOUT_MS = 60_000

const cliHostEntries = Effect.forEach(CLI_HOSTS, (host) => {
  const spec = CLI_HOST_SPECS[host]
  const bin = which(spec.bin)
  if (!bin) return Effect.succeed<HostEntry | undefined>(undefined)
  return runHostCommand(bin, spec.get).pipe(
    Effect.timeoutFail({ duration: HOST_CLI_TIMEOUT, onTimeout: () => new Error(`${spec.bin} did not answer`) }),
    Effect.map(({ stdout }): HostEntry => {
      const { command, status } = describeRegistration(host, stdout)
      return { host, where: bin, registered: true, command: command ?? null, status: status ?? null, error: null }
    }),
    // `get` fails for a name it does not have; anything else it printed is kept for the report.
    Effect.catchAll((e) =>
      Effect.succeed<HostEntry>({
        host,
        where: bin,
        registered: false,
        command: null,
        status: null,
        error: "exitCode" in e && e.exitCode !== undefined ? null : e.message
      })
    )
  )
})

const configHostEntries = (project: string, home: string): ReadonlyArray<HostEntry> =>
  CONFIG_HOSTS.flatMap((host) =>
    hostConfigFiles(host, home).flatMap((file): Array<HostEntry> => {
      const path = Path.resolve(project, file)
      let text: string
      try {
        text = Fs.readFileSync(path, "utf8")
      } catch {
        return []
      }
      try {
        const entry = registeredEntry(host, parseJsonc(text))
        const launch = entry && entryLaunch(entry)
        return [{ host, where: path, registered: entry !== undefined, command: launch ? commandLine(launch) : null, status: null, error: null }]
      } catch (e) {
        return [{ host, where: path, registered: false, command: null, status: null, error: `not valid JSON: ${(e as Error).message}` }]
      }
    })
  )

/** This install's server, started and called through the official MCP client, as a host would. */
const checkServer = Effect.promise(async (): Promise<ServerCheck> => {
  const launch = serverLaunch({ local: true })
  const [{ Client }, { StdioClientTransport }] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/stdio.js")
  ])
  const transport = new StdioClientTransport({
    command: launch.command,
    args: [...launch.args],
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    stderr: "pipe"
  })
  let stderr = ""
  transport.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)))
  const client = new Client({ name: "pyro-host-doctor", version: "1.0.0" })
  const started = Date.now()
  const base = { command: commandLine(launch), started: false, startup_ms: null, tools: [] }
  try {
    await client.connect(transport, { timeout: SERVER_TIMEOUT_MS })
    const startup = Date.now() - started
    const tools = (await client.listTools(undefined, { timeout: SERVER_TIMEOUT_MS })).tools.map((t) => t.name)
    const result = await client.callTool({ name: CHECK_TOOL, arguments: {} }, undefined, { timeout: SERVER_TIMEOUT_MS })
    const text = (result.content as Array<{ text?: string }> | undefined)?.[0]?.text ?? ""
    const count = (result.structuredContent as { environments?: Array<unknown> } | undefined)?.environments?.length
    return {
      ...base,
      started: true,
      startup_ms: startup,
      tools,
      tool_call: result.isError
        ? { tool: CHECK_TOOL, ok: false, detail: text }
        : { tool: CHECK_TOOL, ok: true, detail: `${count ?? "?"} environments` },
      error: null
    }
  } catch (e) {
    const why = [(e as Error).message, stderr.trim().split("\n").slice(-3).join(" | ")].filter((s) => s).join("; ")
    return { ...base, tool_call: { tool: CHECK_TOOL, ok: false, detail: "not called" }, error: why }
  } finally {
    await client.close().catch(() => undefined)
  }
})

export const hostDoctor = (
  options: { readonly project?: string; readonly home?: string } = {}
): Effect.Effect<HostDoctorReport, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const project = options.project ?? process.cwd()
    const [cliHosts, server] = yield* Effect.all([cliHostEntries, checkServer], { concurrency: 2 })
    const hosts = [...cliHosts.filter((h) => h !== undefined), ...configHostEntries(project, options.home ?? Os.homedir())]
    const issues: Array<{ problem: string; fix: string }> = []
    for (const h of hosts) {
      if (h.error) issues.push({ problem: `${h.host} (${h.where}): ${h.error}`, fix: `check ${h.where}` })
      else if (!h.registered) {
        issues.push({
          problem: `${h.host} (${h.where}) has no ${SERVER_KEY} server`,
          fix: (CLI_HOSTS as ReadonlyArray<string>).includes(h.host) ? `pyro host connect ${h.host}` : `pyro host print-config ${h.host}`
        })
      }
    }
    if (!hosts.some((h) => h.registered)) {
      issues.push({
        problem: "pyro is registered with no host found here",
        fix: "pyro host connect claude-code|codex, or pyro host print-config opencode|cursor|vscode|claude-desktop"
      })
    }
    if (!server.started) issues.push({ problem: `pyro mcp serve did not start: ${server.error}`, fix: "pyro doctor" })
    else if (!server.tool_call.ok) {
      issues.push({ problem: `${CHECK_TOOL} failed: ${server.tool_call.detail}`, fix: "pyro doctor" })
    }
    return { hosts, server, issues, ok: server.started && server.tool_call.ok && hosts.some((h) => h.registered) }
  })
