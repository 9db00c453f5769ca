/**
 * Workspaces a person can manage, each CLI call a new `pyro` process, and an
 * MCP client for the refusals: two workspaces created with names and labels,
 * listed and filtered by label; one renamed, its labels merged, removed and
 * cleared, its lifetime renewed; last_activity_at moved by an exec and a file
 * write; a summary of commands, changed files and a service, and of a stopped
 * VM without booting it; bad names and labels refused as invalid_input before
 * anything boots.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { cliFor } from "../support/cli.js"
import { makeStateDir, pyroBin, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const cli = cliFor(stateDir)
let client: Client
let first = ""
let second = ""

/** A `--json` call that must succeed: its result. */
const json = async (...args: Array<string>) => {
  const r = await cli.json(...args)
  expect(r.code, r.stderr).toBe(0)
  return r.data
}

const call = async (name: string, args: Record<string, unknown>) => {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 180_000 })
  return { isError: result.isError === true, text: (result.content as Array<{ text: string }>)[0]?.text ?? "" }
}

const workspaceDirs = () => (Fs.existsSync(Path.join(stateDir, "workspaces")) ? Fs.readdirSync(Path.join(stateDir, "workspaces")) : [])

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

beforeAll(async () => {
  const a = await json("workspace", "create", "tiny", "--mem-mib", "256", "--name", "api fix", "--label", "team=core", "--label", "task=1")
  const b = await json("workspace", "create", "tiny", "--mem-mib", "256", "--name", "docs", "--label", "team=docs")
  first = a["workspace_id"]
  second = b["workspace_id"]
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve", "--no-project-source"],
    env: { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>,
    stderr: "pipe"
  })
  client = new Client({ name: "pyro-manage-test", version: "1.0.0" })
  await client.connect(transport)
}, 600_000)

afterAll(async () => {
  await client?.close()
  for (const id of [first, second]) if (id) await cli.pyro("workspace", "delete", id)
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

describe("workspaces a person can manage", () => {
  it("keeps name and labels from create, in status and the list, and filters by label", async () => {
    const status = await json("workspace", "status", first)
    expect(status).toMatchObject({ name: "api fix", labels: { team: "core", task: "1" } })
    expect(status["last_activity_at"]).toBe(status["created_at"])

    const all = await json("workspace", "list")
    expect(all["count"]).toBe(2)
    expect(all["workspaces"].map((w: any) => w.workspace_id).sort()).toEqual([first, second].sort())
    expect(all["workspaces"].find((w: any) => w.workspace_id === second)).toEqual({
      workspace_id: second,
      name: "docs",
      labels: { team: "docs" },
      state: "started",
      environment: "tiny",
      created_at: expect.any(String),
      last_activity_at: expect.any(String),
      expires_at: expect.any(String)
    })

    const core = await json("workspace", "list", "--label", "team=core")
    expect(core["workspaces"].map((w: any) => w.workspace_id)).toEqual([first])
    // Every label given must match.
    expect((await json("workspace", "list", "--label", "team=core", "--label", "task=2"))["count"]).toBe(0)

    const table = await cli.pyro("workspace", "list")
    expect(table.code).toBe(0)
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATE\s+ENVIRONMENT\s+LAST ACTIVITY\s+EXPIRES\s+LABELS$/)
    expect(table.stdout).toContain("api fix")
  })

  it("renames, merges, removes and clears labels, and renews the lifetime from now", async () => {
    const renamed = await json("workspace", "update", first, "--name", "api fix 2", "--label", "task=2", "--label", "owner=ana")
    expect(renamed).toMatchObject({ workspace_id: first, name: "api fix 2", labels: { team: "core", task: "2", owner: "ana" } })

    const removed = await json("workspace", "update", first, "--clear-label", "owner", "--clear-label", "absent")
    expect(removed["labels"]).toEqual({ team: "core", task: "2" })

    const before = Date.now()
    const renewed = await json("workspace", "update", first, "--clear-labels", "--label", "stage=review", "--ttl-seconds", "7200")
    expect(renewed["labels"]).toEqual({ stage: "review" })
    expect(renewed["ttl_seconds"]).toBe(7200)
    const expires = Date.parse(renewed["expires_at"])
    expect(expires).toBeGreaterThanOrEqual(before + 7200_000)
    expect(expires).toBeLessThan(Date.now() + 7200_000 + 1000)

    const unnamed = await json("workspace", "update", second, "--clear-name")
    expect(unnamed["name"]).toBeNull()
    expect((await json("workspace", "status", second))["name"]).toBeNull()

    // Through MCP: the same operation, and one that would go past 32 labels.
    const many = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, `${i}`]))
    const full = await call("workspace_update", { workspace_id: first, labels: many })
    expect(full.isError).toBe(true)
    expect(full.text).toMatch(/^invalid_input: labels: a workspace has at most 32 labels/)
    expect((await json("workspace", "status", first))["labels"]).toEqual({ stage: "review" })
  })

  it("moves last_activity_at on an exec and a file write, and summarises commands, files and services", async () => {
    const created = (await json("workspace", "status", first))["last_activity_at"]
    const ran = await cli.pyro("workspace", "exec", first, "--", "sh", "-c", "echo one > a.txt && mkdir -p src && echo two > src/b.txt")
    expect(ran.code, ran.stderr).toBe(0)
    expect((await cli.pyro("workspace", "exec", first, "--", "false")).code).toBe(1)
    const afterExec = (await json("workspace", "status", first))["last_activity_at"]
    expect(afterExec > created).toBe(true)

    // A change within a second of the last one may leave it as it is (ACTIVITY_RESOLUTION_MS).
    await sleep(1100)
    await json("workspace", "file", "write", first, "notes.md", "--text", "hello")
    const afterWrite = (await json("workspace", "status", first))["last_activity_at"]
    expect(afterWrite > afterExec).toBe(true)

    // Reading changes nothing.
    await sleep(1100)
    await json("workspace", "file", "read", first, "notes.md")
    expect((await json("workspace", "status", first))["last_activity_at"]).toBe(afterWrite)

    await json("workspace", "service", "start", first, "sleeper", "--", "sleep", "600")

    const summary = await json("workspace", "summary", first)
    expect(summary).toMatchObject({
      workspace_id: first,
      name: "api fix 2",
      labels: { stage: "review" },
      state: "started",
      environment: "tiny",
      commands: { count: 2, failed_count: 1 },
      files: {
        total: 3,
        added: 3,
        modified: 0,
        deleted: 0,
        changes: [
          { path: "/workspace/a.txt", change: "added" },
          { path: "/workspace/notes.md", change: "added" },
          { path: "/workspace/src/b.txt", change: "added" }
        ],
        truncated: false
      },
      services: { count: 1, running_count: 1, services: [{ service_name: "sleeper", state: "running", exit_code: null }] },
      secrets: [],
      notes: []
    })
    expect(summary["commands"]["recent"].map((c: any) => [c.command, c.exit_code])).toEqual([
      ["sh -c 'echo one > a.txt && mkdir -p src && echo two > src/b.txt'", 0],
      ["false", 1]
    ])
    expect(summary["last_activity_at"] > afterWrite).toBe(true) // the service start
    expect(summary["text"]).toContain(`Workspace ${first} "api fix 2" (tiny): started`)
    expect(summary["text"]).toContain("Commands: 2 run, 1 failed")
    expect(summary["text"]).toContain("  added /workspace/notes.md")
    expect(summary["text"]).toContain("Services: 1 running of 1")

    // Human output is the text.
    const human = await cli.pyro("workspace", "summary", first)
    expect(human.stdout).toBe(summary["text"])
  })

  it("summarises a stopped workspace without booting it", async () => {
    const record = JSON.parse(Fs.readFileSync(Path.join(stateDir, "workspaces", second, "workspace.json"), "utf8"))
    process.kill(record.vmm.pid, "SIGKILL")
    for (let i = 0; i < 100 && qemuProcessesUnder(Path.join(stateDir, "workspaces", second)).length > 0; i++) await sleep(50)

    const summary = await json("workspace", "summary", second)
    expect(summary).toMatchObject({ state: "stopped", files: null, services: null, commands: { count: 0 } })
    expect(summary["notes"][0]).toMatch(/not running/)
    expect(summary["text"]).toContain("Commands: none run")
    expect(qemuProcessesUnder(Path.join(stateDir, "workspaces", second))).toEqual([])
    expect((await json("workspace", "status", second))["state"]).toBe("stopped")
  })

  it("refuses bad names and labels as invalid_input before anything boots", async () => {
    const before = workspaceDirs()
    const bad: Array<Record<string, unknown>> = [
      { name: "" },
      { name: "x".repeat(65) },
      { name: "tab\there" },
      { name: "bidi\u202eeman" },
      { name: " padded" },
      { labels: { Team: "core" } },
      { labels: { "-x": "y" } },
      { labels: { ok: "line\nbreak" } },
      { labels: { ok: "v".repeat(129) } },
      { labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, ""])) }
    ]
    for (const extra of bad) {
      const r = await call("workspace_create", { environment: "tiny", mem_mib: 256, ...extra })
      expect(r.isError, JSON.stringify(extra)).toBe(true)
      expect(r.text, JSON.stringify(extra)).toMatch(/^invalid_input: /)
    }
    const update = await call("workspace_update", { workspace_id: first, name: "a", clear_name: true })
    expect(update.text).toMatch(/^invalid_input: name: give name or clear_name, not both/)
    const filter = await call("workspace_list", { labels: { "Not Valid": "x" } })
    expect(filter.text).toMatch(/^invalid_input: /)

    // The CLI checks the same schema: a usage error, exit 2.
    const r = await cli.pyro("workspace", "create", "tiny", "--label", "Bad=x")
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("a label key is")
    expect((await cli.pyro("workspace", "create", "tiny", "--label", "novalue")).code).toBe(2)
    expect(workspaceDirs()).toEqual(before)
  })
})
