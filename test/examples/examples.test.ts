/**
 * The examples as a user runs them: `node examples/*.mjs` against the built SDK
 * (dist/sdk.js, bundled by globalSetup), with real VMs, the recorded model
 * replies (no OPENAI_API_KEY), and nothing left behind. Plus: the MCP client
 * snippets parse, and their command really serves pyro's tools.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import { makeStateDir, qemuProcessesUnder, repoRoot, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})
afterEach(() => {
  expect(qemuProcessesUnder(stateDir)).toEqual([])
  expect(vmDirsUnder(stateDir)).toEqual([])
})

const exampleEnv = (): Record<string, string> => {
  const env: Record<string, string | undefined> = { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_EXAMPLE_ENV: "tiny" }
  delete env["OPENAI_API_KEY"]
  return env as Record<string, string>
}

/** Runs a file the way its header says; rejects on a non-zero exit (with stdout and stderr). */
const run = (file: string, argv: ReadonlyArray<string> = [process.execPath]) =>
  promisify(execFile)(argv[0]!, [...argv.slice(1), Path.join(repoRoot, "examples", file)], {
    cwd: repoRoot,
    env: exampleEnv(),
    timeout: 110_000
  })

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

type Tool = { description: string; parameters: Record<string, unknown>; inputSchema: unknown; execute: unknown }
type VercelExample = {
  pyroVmRunTool: (pyro: unknown, options?: { environment?: string }) => Tool
  pyroVmRunLangChainTool: (pyro: unknown, options?: { environment?: string }) => Tool & {
    name: string
    schema: unknown
    invoke: (input: unknown) => Promise<string>
  }
}
type Sdk = typeof import("../../src/entrypoints/sdk.js")

describe("examples", () => {
  it("openai-tool-loop.mjs: runs each function_call in a VM and ends with the model's answer", async () => {
    const { stdout } = await run("openai-tool-loop.mjs")
    const lines = stdout.trim().split("\n")
    expect(lines.filter((l) => l.startsWith("[tool] vm_run"))).toEqual([
      `[tool] vm_run {"command":"echo $((6 * 7))"} -> exit_code=0 stdout="42\\n"`,
      `[tool] vm_run {"command":["uname","-s"]} -> exit_code=0 stdout="Linux\\n"`
    ])
    const answer = lines.at(-1)!
    expect(answer).toMatch(/^\[answer\] /)
    expect(answer).toContain("42")
    expect(answer).toContain("Linux")
  })

  it("vercel-ai-tool.mjs: executes the tool once and prints the vm_run result", async () => {
    const { stdout } = await run("vercel-ai-tool.mjs")
    expect(JSON.parse(stdout)).toMatchObject({
      stdout: "hello from Linux\n",
      exit_code: 0,
      environment: "tiny",
      execution_mode: "guest_virtio_serial",
      timed_out: false
    })
  })

  it("vercel-ai-tool.mjs: the exported wrappers have the shapes the AI SDK and LangChain take", async () => {
    const { Pyro } = (await import(Path.join(repoRoot, "dist", "sdk.js"))) as Sdk
    const example = (await import(Path.join(repoRoot, "examples", "vercel-ai-tool.mjs"))) as VercelExample
    const pyro = new Pyro({ stateDir })
    try {
      const vercel = example.pyroVmRunTool(pyro)
      expect(Object.keys(vercel).sort()).toEqual(["description", "execute", "inputSchema", "parameters"])
      expect(vercel.inputSchema).toBe(vercel.parameters)
      expect(vercel.parameters).toMatchObject({ type: "object", required: ["command"], additionalProperties: false })
      expect(Object.keys(vercel.parameters["properties"] as object)).not.toContain("environment")
      expect(vercel.description).toContain("debian:12 environment")

      const langchain = example.pyroVmRunLangChainTool(pyro, { environment: "tiny" })
      expect(langchain).toMatchObject({ name: "vm_run", schema: vercel.parameters })
      // Bad input fails before any VM boots, with the code and a message for the model.
      const error = await langchain.invoke({ command: "true", mem_mib: 1 }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: "invalid_input", message: expect.stringContaining("mem_mib") })
    } finally {
      await pyro.close()
    }
  })

  it("effect-program.ts: runs under NodeRuntime with the live layers", async () => {
    const { stdout } = await run("effect-program.ts", [Path.join(repoRoot, "node_modules", ".bin", "vite-node")])
    expect(stdout).toContain("streamed\nLinux\n")
    expect(stdout).toMatch(/vm_run: exit_code=0 boot_ms=\d+ mode=guest_virtio_serial/)
    expect(stdout).toMatch(/vm_exec: exit_code=0 cpuinfo_bytes=[1-9]\d* deleted=true/)
  })
})

describe("examples/mcp-clients.md", () => {
  const markdown = Fs.readFileSync(Path.join(repoRoot, "examples", "mcp-clients.md"), "utf8")
  const blocks = (lang: string) =>
    [...markdown.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!)

  type Launch = { command: string; args: Array<string>; env?: Record<string, string> }
  const launches = (config: Record<string, any>): Array<Launch> =>
    config["command"]
      ? [config as Launch]
      : config["mcp"] // OpenCode: the command and its arguments in one array
      ? Object.values(config["mcp"] as Record<string, { command: Array<string> }>).map(({ command: [command, ...args] }) => ({ command: command!, args }))
      : Object.values(config["mcpServers"] ?? config["servers"] ?? {})

  it("has JSON snippets that parse, each starting `pyro mcp serve` through npx or a checkout's bin/pyro.js", () => {
    const json = blocks("json")
    expect(json.length).toBeGreaterThanOrEqual(7)
    for (const text of json) {
      const servers = launches(JSON.parse(text))
      expect(servers.length).toBe(1)
      const words = [servers[0]!.command, ...servers[0]!.args].join(" ")
      expect(words).toMatch(/(npx -y pyro-sandbox|node \/path\/to\/pyro\/bin\/pyro\.js) mcp serve( --profile [a-z-]+)?$/)
      for (const value of Object.values(servers[0]!.env ?? {})) expect(typeof value).toBe("string")
    }
    const toml = blocks("toml")
    expect(toml).toHaveLength(1)
    expect(toml[0]).toMatch(/^\[mcp_servers\.pyro\]\ncommand = "npx"\nargs = \["-y", "pyro-sandbox", "mcp", "serve"\]/)
  })

  it("shows for each host the file `pyro host print-config` prints", async () => {
    for (const host of ["opencode", "cursor", "vscode", "claude-desktop"]) {
      const { stdout } = await promisify(execFile)(process.execPath, [Path.join(repoRoot, "bin", "pyro.js"), "host", "print-config", host])
      expect(blocks("json")).toContain(stdout)
    }
  })

  it("its checkout command, with the real path, serves the vm_* tools and deletes its VMs when the client leaves", async () => {
    const launch = blocks("json").map((text) => launches(JSON.parse(text))[0]!).find((l) => l.args.includes("/path/to/pyro/bin/pyro.js"))!
    const transport = new StdioClientTransport({
      command: launch.command === "node" ? process.execPath : launch.command,
      args: launch.args.map((a) => a.replace("/path/to/pyro", repoRoot)),
      env: { ...exampleEnv(), ...launch.env, PYRO_STATE_DIR: stateDir },
      stderr: "pipe"
    })
    const client = new Client({ name: "examples-test", version: "1.0.0" })
    await client.connect(transport)
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["vm_run", "vm_create", "vm_exec", "vm_reap_expired"]))
    // What the page promises: the VMs the server created go when the client disconnects.
    const created = await client.callTool({ name: "vm_create", arguments: { environment: "tiny", mem_mib: 256 } })
    const vmId = (created.structuredContent as { vm_id: string }).vm_id
    await client.callTool({ name: "vm_start", arguments: { vm_id: vmId } })
    expect(qemuProcessesUnder(stateDir)).toHaveLength(1)
    const serverPid = transport.pid!
    await client.close()
    const deadline = Date.now() + 15_000
    while (isRunning(serverPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(isRunning(serverPid)).toBe(false)
  })
})
