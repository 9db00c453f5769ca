/**
 * `pyro host`: print-config against each host's documented format (and the
 * printed command served to a real MCP client), connect and doctor against the
 * hosts' real CLIs from npm (`claude mcp add/list`, `codex mcp add/list`),
 * installed into a temporary prefix. Each host gets a temporary HOME, so
 * nothing of the user's own configuration is read or changed.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { parseJsonc } from "../../src/chatHosts/configs.js"
import { PACKAGE_NAME } from "../../src/chatHosts/launch.js"
import { runProcess } from "../support/cli.js"
import { makeStateDir, pyroBin } from "../support/vm.js"

/** The versions these tests were written against; their `mcp` subcommands need no login or network. */
const HOST_PACKAGES = ["@anthropic-ai/claude-code@2.1.197", "@openai/codex@0.171.0"]

const root = makeStateDir()
const stateDir = Path.join(root, "state")
const prefix = Path.join(root, "hosts")
const home = Path.join(root, "home")
const project = Path.join(root, "project")
for (const dir of [stateDir, prefix, home, project]) Fs.mkdirSync(dir, { recursive: true })
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const env = (): NodeJS.ProcessEnv => ({
  ...process.env,
  HOME: home,
  PATH: `${Path.join(prefix, "node_modules", ".bin")}:${process.env.PATH}`,
  PYRO_STATE_DIR: stateDir,
  // Keep the hosts' CLIs to their config files: no update checks, no telemetry.
  DISABLE_AUTOUPDATER: "1",
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1"
})
const pyro = (...args: Array<string>) => runProcess(process.execPath, [pyroBin, ...args], { env: env(), cwd: project })
const host = (bin: string, ...args: Array<string>) =>
  runProcess(Path.join(prefix, "node_modules", ".bin", bin), args, { env: env(), cwd: project })

/** Why the hosts' CLIs cannot run here, if they cannot (their tests then skip, saying so). */
let hostsMissing: string | undefined
beforeAll(async () => {
  // npm runs no install scripts here; both CLIs work without theirs (checked below by running them).
  const installed = await runProcess("npm", ["install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", ...HOST_PACKAGES])
  if (installed.code !== 0) hostsMissing = `npm install ${HOST_PACKAGES.join(" ")} failed: ${installed.stderr.slice(-500)}`
}, 600_000)

const serverFrom = async (command: string, args: ReadonlyArray<string>) => {
  const client = new Client({ name: "pyro-hosts-test", version: "1.0.0" })
  await client.connect(new StdioClientTransport({ command, args: [...args], env: env() as Record<string, string>, stderr: "pipe" }))
  return client
}

describe("pyro host print-config", () => {
  const printed = async (...args: Array<string>) => {
    const r = await pyro("host", "print-config", ...args)
    expect(r.code).toBe(0)
    return { config: parseJsonc(r.stdout) as Record<string, any>, stderr: r.stderr }
  }
  const npx = ["-y", PACKAGE_NAME, "mcp", "serve"]

  it("prints each host's documented shape, starting the server with npx", async () => {
    const opencode = await printed("opencode")
    expect(opencode.config).toEqual({
      $schema: "https://opencode.ai/config.json",
      mcp: { pyro: { type: "local", command: ["npx", ...npx], enabled: true } }
    })
    expect(opencode.stderr).toContain("opencode.json")
    expect((await printed("cursor")).config).toEqual({ mcpServers: { pyro: { command: "npx", args: npx } } })
    expect((await printed("claude-desktop")).config).toEqual({ mcpServers: { pyro: { command: "npx", args: npx } } })
    expect((await printed("vscode")).config).toEqual({ servers: { pyro: { type: "stdio", command: "npx", args: npx } } })
    expect((await printed("vscode", "--profile", "vm-run", "--package", "pyro-sandbox@0.1.0")).config.servers.pyro.args)
      .toEqual(["-y", "--package=pyro-sandbox@0.1.0", "pyro", "mcp", "serve", "--profile", "vm-run"])
    expect((await pyro("host", "print-config", "cursor", "--local", "--package", "x")).code).toBe(2)
    expect((await pyro("host", "print-config", "emacs")).code).toBe(2)
  })

  it("with --local, prints this checkout's command, which serves the profile it names", async () => {
    const { config } = await printed("opencode", "--local", "--profile", "vm-run")
    const [command, ...args] = config["mcp"].pyro.command as Array<string>
    expect(command).toBe(process.execPath)
    expect(args).toEqual([pyroBin, "mcp", "serve", "--profile", "vm-run"])
    const client = await serverFrom(command!, args)
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["vm_run"])
    await client.close()
  })
})

describe("pyro host connect and doctor, with the hosts' real CLIs", () => {
  it("doctor with nothing registered: the server answers, and the issues say how to register", async (ctx) => {
    if (hostsMissing) ctx.skip()
    const r = await pyro("host", "doctor", "--json")
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.hosts.map((h: any) => [h.host, h.registered])).toEqual([["claude-code", false], ["codex", false]])
    expect(report.server).toMatchObject({ started: true, tool_call: { tool: "vm_list_environments", ok: true } })
    expect(report.issues.map((i: any) => i.fix)).toContain("pyro host connect claude-code")
  })

  it("claude-code: `claude mcp add` through connect, then `claude mcp list` starts pyro and reports it connected", async (ctx) => {
    if (hostsMissing) ctx.skip()
    const connected = await pyro("host", "connect", "claude-code", "--local")
    expect(connected.code, connected.stderr).toBe(0)
    const listed = await host("claude", "mcp", "list")
    expect(listed.stdout).toMatch(new RegExp(`pyro: ${process.execPath} ${pyroBin} mcp serve - ✔ Connected`))
    // Again, with another profile: the entry is replaced, not refused as a duplicate.
    expect((await pyro("host", "connect", "claude-code", "--local", "--profile", "workspace-full")).code).toBe(0)
    expect((await host("claude", "mcp", "get", "pyro")).stdout).toContain("mcp serve --profile workspace-full")
    expect((await pyro("host", "connect", "claude-code", "--scope", "nowhere")).code).toBe(2)
  })

  it("codex: `codex mcp add` through connect, in ~/.codex/config.toml, and `codex mcp list` shows it", async (ctx) => {
    if (hostsMissing) ctx.skip()
    expect((await pyro("host", "connect", "codex", "--local")).code).toBe(0)
    const listed = JSON.parse((await host("codex", "mcp", "list", "--json")).stdout) as Array<any>
    expect(listed).toEqual([expect.objectContaining({
      name: "pyro",
      enabled: true,
      transport: expect.objectContaining({ type: "stdio", command: process.execPath, args: [pyroBin, "mcp", "serve"] })
    })])
    const toml = Fs.readFileSync(Path.join(home, ".codex", "config.toml"), "utf8")
    expect(toml).toContain("[mcp_servers.pyro]")
    // Codex's tools only start the server when a session does: start what it would, as a host does.
    const client = await serverFrom(listed[0].transport.command, listed[0].transport.args)
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("workspace_create")
    await client.close()
    expect((await pyro("host", "connect", "codex", "--scope", "user")).code).toBe(2)
  })

  it("doctor: both hosts registered (Claude Code's own check included), config files read, JSONC and all", async (ctx) => {
    if (hostsMissing) ctx.skip()
    Fs.mkdirSync(Path.join(project, ".cursor"))
    Fs.writeFileSync(Path.join(project, ".cursor", "mcp.json"), (await pyro("host", "print-config", "cursor")).stdout)
    Fs.writeFileSync(Path.join(project, "opencode.jsonc"), "{\n  // mine\n  \"mcp\": { \"other\": { \"type\": \"local\", \"command\": [\"x\"], }, },\n}\n")
    const r = await pyro("host", "doctor")
    expect(r.code, r.stdout).toBe(0)
    expect(r.stdout).toMatch(/claude-code \(.*\): pyro registered: .*mcp serve --profile workspace-full \(✔ Connected\)/)
    expect(r.stdout).toMatch(/codex \(.*\): pyro registered: .*bin\/pyro\.js mcp serve/)
    expect(r.stdout).toMatch(/cursor \(.*\.cursor\/mcp\.json\): pyro registered: npx -y pyro-sandbox mcp serve/)
    expect(r.stdout).toMatch(/opencode \(.*opencode\.jsonc\): pyro not registered/)
    expect(r.stdout).toContain("fix: pyro host print-config opencode")
    expect(r.stdout).toMatch(/Tool call: vm_list_environments: ok/)
  })
})

describe("host configs", () => {
  it("reads comments and trailing commas outside strings, and leaves strings alone", () => {
    expect(parseJsonc("{ /* a */ \"a\": \"// not a comment, }\", // b\n \"b\": [1, 2,], }")).toEqual({ a: "// not a comment, }", b: [1, 2] })
    expect(() => parseJsonc("{")).toThrow()
  })

  it("the launch names the package package.json makes", () => {
    const manifest = JSON.parse(Fs.readFileSync(Path.join(Path.dirname(pyroBin), "..", "package.json"), "utf8"))
    expect(manifest.name).toBe(PACKAGE_NAME)
    expect(manifest.bin).toEqual({ pyro: "bin/pyro.js" })
  })
})
