/**
 * A tool caller's seed_path and source_path stay inside the operator's import
 * roots: by default the directory the server started in; never pyro's state
 * or cache; never through a link that leaves a root. Refusals come before
 * anything boots, and never say whether a path outside the roots exists.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { makeStateDir, pyroBin, qemuProcessesUnder } from "../support/vm.js"
import { defaultImportRoots } from "../../src/workspace/import/roots.js"

const scratch = makeStateDir()
const project = Path.join(scratch, "project")
const elsewhere = Path.join(scratch, "elsewhere")
const stateDir = Path.join(project, ".pyro-state")
Fs.mkdirSync(Path.join(project, "src"), { recursive: true })
Fs.writeFileSync(Path.join(project, "src", "main.c"), "int main(void) { return 0; }\n")
Fs.mkdirSync(Path.join(elsewhere, ".ssh"), { recursive: true })
Fs.writeFileSync(Path.join(elsewhere, ".ssh", "id_ed25519"), "PRIVATE KEY\n")
Fs.symlinkSync(Path.join(elsewhere, ".ssh"), Path.join(project, "keys"))

afterAll(() => {
  for (const pid of qemuProcessesUnder(scratch)) process.kill(pid, "SIGKILL")
  Fs.rmSync(scratch, { recursive: true, force: true })
})

const serve = async (env: Record<string, string> = {}) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve"],
    cwd: project,
    env: { ...process.env, PYRO_STATE_DIR: stateDir, ...env } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: "pyro-imports-test", version: "1.0.0" })
  await client.connect(transport)
  return client
}

const call = async (client: Client, name: string, args: Record<string, unknown>) => {
  const result = await client.callTool({ name, arguments: args })
  const text = (result.content as Array<{ text: string }>)[0]?.text ?? ""
  return { isError: result.isError === true, text, data: (result.structuredContent ?? {}) as Record<string, any> }
}

const workspaces = () => {
  try {
    return Fs.readdirSync(Path.join(stateDir, "workspaces"))
  } catch {
    return []
  }
}

describe("caller imports", () => {
  it("refuses paths outside the start directory, links out of it, and pyro's own state, before anything boots", async () => {
    const client = await serve()
    try {
      for (const [seed, why] of [
        [Path.join(elsewhere, ".ssh"), "is outside the directories this server may import from"],
        ["/nonexistent/outside", "is outside the directories this server may import from"],
        ["../elsewhere", "is outside the directories this server may import from"],
        ["keys", "leads outside the import roots through a link"],
        [".", "is or holds pyro's own state or cache directory"],
        [".pyro-state", "is or holds pyro's own state or cache directory"]
      ] as const) {
        const r = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: seed })
        expect(r.isError, seed).toBe(true)
        expect(r.text).toMatch(/^invalid_input: seed_path: /)
        expect(r.text).toContain(why)
        expect(r.text).not.toContain("PRIVATE KEY")
      }
      expect(workspaces()).toEqual([])
      expect(qemuProcessesUnder(scratch)).toEqual([])

      // Inside the root: a relative path is the server's own directory's.
      const made = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: "src" })
      expect(made.isError, made.text).toBe(false)
      const id = made.data["workspace_id"]
      const pushed = await call(client, "workspace_sync_push", { workspace_id: id, source_path: Path.join(elsewhere, ".ssh") })
      expect(pushed.text).toMatch(/^invalid_input: source_path: .* is outside/)
      const listed = JSON.parse((await call(client, "workspace_exec", { workspace_id: id, command: "ls -A /workspace" })).text)
      expect(listed.stdout).toBe("main.c\n")
      await call(client, "workspace_delete", { workspace_id: id })
    } finally {
      await client.close()
    }
  })

  it("PYRO_IMPORT_ROOTS sets the roots; the CLI, run by the operator, may import any path", async () => {
    const client = await serve({ PYRO_IMPORT_ROOTS: elsewhere })
    try {
      const outside = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: "src" })
      expect(outside.text).toMatch(/^invalid_input: seed_path: "src" is outside/)
      const inside = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: Path.join(elsewhere, ".ssh") })
      expect(inside.isError, inside.text).toBe(false)
      await call(client, "workspace_delete", { workspace_id: inside.data["workspace_id"] })
    } finally {
      await client.close()
    }
    const cli = (...args: Array<string>) =>
      JSON.parse(execFileSync(process.execPath, [pyroBin, ...args, "--json"], { cwd: project, env: { ...process.env, PYRO_STATE_DIR: stateDir } }).toString())
    const byOperator = cli("workspace", "create", "tiny", "--mem-mib", "256", "--seed-path", Path.join(elsewhere, ".ssh"))
    expect(byOperator.workspace_seed).toMatchObject({ mode: "directory", files: 1 })
    cli("workspace", "delete", byOperator.workspace_id)
  })

  it("an empty PYRO_IMPORT_ROOTS allows no imports; a root named through a link takes paths named either way", async () => {
    const none = await serve({ PYRO_IMPORT_ROOTS: "" })
    try {
      const r = await call(none, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: "src" })
      expect(r.text).toMatch(/^invalid_input: seed_path: "src" is outside .*no import roots are set/)
    } finally {
      await none.close()
    }
    const link = Path.join(scratch, "project-link")
    Fs.symlinkSync(project, link)
    const linked = await serve({ PYRO_IMPORT_ROOTS: link })
    try {
      const r = await call(linked, "workspace_create", { environment: "tiny", mem_mib: 256, seed_path: Path.join(link, "src") })
      expect(r.isError, r.text).toBe(false)
      await call(linked, "workspace_delete", { workspace_id: r.data["workspace_id"] })
    } finally {
      await linked.close()
    }
  })

  it("never takes /, the home directory or a directory above it as the default root", () => {
    expect(defaultImportRoots("/", "/home/u")).toEqual([])
    expect(defaultImportRoots("/home/u", "/home/u")).toEqual([])
    expect(defaultImportRoots("/home", "/home/u")).toEqual([])
    expect(defaultImportRoots("/home/u/project", "/home/u")).toEqual(["/home/u/project"])
    expect(defaultImportRoots(Os.homedir())).toEqual([])
  })
})
