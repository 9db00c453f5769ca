/**
 * The package `npm pack` makes, installed into a fresh project the way a user
 * installs it: it carries what pyro reads at run time (the bundles, the
 * agent's sources, the network scripts), and there `npx pyro --version`,
 * `npx pyro mcp serve` (through the official MCP client) and
 * `import { Pyro } from "pyro-sandbox"` work. Packed without its prepack build
 * (the run's globalSetup has bundled dist/ already; a build here would rewrite
 * it under other test files).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { PACKAGE_NAME } from "../../src/chatHosts/launch.js"
import { runProcess } from "../support/cli.js"
import { makeStateDir, pyroBin } from "../support/vm.js"

const repoRoot = Path.resolve(Path.dirname(pyroBin), "..")
const root = makeStateDir()
const project = Path.join(root, "project")
const stateDir = Path.join(root, "state")
Fs.mkdirSync(project)
Fs.mkdirSync(stateDir)
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const env = { ...process.env, PYRO_STATE_DIR: stateDir }
let tarball = ""

beforeAll(async () => {
  const packed = await runProcess("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", root], { cwd: repoRoot })
  expect(packed.code, packed.stderr).toBe(0)
  tarball = Path.join(root, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename)
  Fs.writeFileSync(Path.join(project, "package.json"), JSON.stringify({ name: "uses-pyro", private: true, type: "module" }))
  // Its dependencies from npm's cache when it has them, else the registry.
  const installed = await runProcess("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: project })
  expect(installed.code, installed.stderr).toBe(0)
}, 600_000)

describe("npm pack", () => {
  it("holds what pyro reads at run time, and no tests or TypeScript sources", async () => {
    const listed = await runProcess("tar", ["-tzf", tarball])
    const files = listed.stdout.split("\n").filter((f) => f).map((f) => f.replace(/^package\//, ""))
    for (const needed of ["bin/pyro.js", "bin/package.json", "dist/cli.cjs", "dist/sdk.js", "dist/allowProxy.cjs", "dist/portForwarder.cjs",
      "guest/agent/main.c", "guest/agent/protocol.h", "src/vm/network/netjail.sh", "src/vm/network/allowProxy.sh"]) {
      expect(files).toContain(needed)
    }
    // Every agent source the checkout has, so the installed package builds the same agent.
    const agent = Fs.readdirSync(Path.join(repoRoot, "guest", "agent")).map((f) => `guest/agent/${f}`)
    expect(files).toEqual(expect.arrayContaining(agent))
    expect(files.filter((f) => /^(test|bench|scripts)\/|\.ts$/.test(f) && !f.endsWith(".d.ts"))).toEqual([])
    if (Fs.existsSync(Path.join(repoRoot, "dist", "types"))) expect(files).toContain("dist/types/entrypoints/sdk.d.ts")
  })

  it("installed: npx pyro --version, doctor, and a command in a VM (the agent from the package's own sources)", async () => {
    const version = await runProcess("npx", ["pyro", "--version"], { cwd: project, env })
    expect(version.stdout.trim()).toBe(JSON.parse(Fs.readFileSync(Path.join(repoRoot, "package.json"), "utf8")).version)
    const doctor = await runProcess("npx", ["pyro", "doctor", "--no-boot", "--json"], { cwd: project, env })
    expect(doctor.code, doctor.stderr).toBe(0)
    expect(JSON.parse(doctor.stdout)).toMatchObject({ runtime: "PASS" })
    const run = await runProcess("npx", ["pyro", "run", "tiny", "--mem-mib", "256", "--", "echo", "from-the-package"], { cwd: project, env })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe("from-the-package\n")
  })

  it("installed: npx pyro mcp serve lists its tools to an MCP client and answers a call", async () => {
    const client = new Client({ name: "pyro-pack-test", version: "1.0.0" })
    await client.connect(new StdioClientTransport({
      command: "npx",
      args: ["pyro", "mcp", "serve"],
      cwd: project,
      env: env as Record<string, string>,
      stderr: "pipe"
    }))
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(["workspace_create", "workspace_exec"]))
    const listed = await client.callTool({ name: "vm_list_environments", arguments: {} })
    expect(listed.isError).toBeFalsy()
    await client.close()
  })

  it("the hosts' form: the command print-config writes, npx -y of the package, serves MCP", async () => {
    const printed = await runProcess(process.execPath, [pyroBin, "host", "print-config", "cursor", "--package", tarball], { env })
    const launch = JSON.parse(printed.stdout).mcpServers.pyro as { command: string; args: Array<string> }
    expect(launch).toEqual({ command: "npx", args: ["-y", `--package=${tarball}`, "pyro", "mcp", "serve"] })
    const client = new Client({ name: "pyro-pack-test", version: "1.0.0" })
    // From a directory with no pyro installed: npx fetches the package itself, as a host's would.
    // The first start installs the package and its dependencies before the server answers: more than the client's default 60 s on a busy machine.
    await client.connect(new StdioClientTransport({ ...launch, cwd: stateDir, env: env as Record<string, string>, stderr: "pipe" }), {
      timeout: 240_000
    })
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("workspace_create")
    await client.close()
  }, 300_000)

  it(`installed: import { Pyro } from "${PACKAGE_NAME}"`, async () => {
    Fs.writeFileSync(Path.join(project, "use.mjs"), [
      `import { Pyro, MCP_PROFILES } from "${PACKAGE_NAME}"`,
      "const pyro = new Pyro()",
      "const tools = pyro.toolDefinitions({ profile: \"vm-run\" }).map((t) => t.name)",
      "const environments = (await pyro.listEnvironments()).map((e) => e.name)",
      "await pyro.close()",
      "console.log(JSON.stringify({ profiles: MCP_PROFILES, tools, environments }))"
    ].join("\n"))
    const ran = await runProcess(process.execPath, ["use.mjs"], { cwd: project, env })
    expect(ran.code, ran.stderr).toBe(0)
    expect(JSON.parse(ran.stdout)).toMatchObject({
      profiles: ["vm-run", "workspace-core", "workspace-full"],
      tools: ["vm_run"],
      environments: expect.arrayContaining(["tiny", "debian:12"])
    })
  })
})
