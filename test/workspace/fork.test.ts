/**
 * workspace_fork through a real MCP client: a running `tiny` workspace with a
 * shell holding a variable, a service and a secret is forked twice; in each
 * copy the service still runs, the same shell answers with the variable it
 * held, the secret reaches a command, and files diverge while both copies run
 * commands at the same time. The copies outlive their source (its layers are
 * shared by hard link), a stopped workspace forks as its disk, and nothing is
 * left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { connectMcp, type McpTest, type Structured, tearDownMcp } from "../support/mcp.js"
import { makeStateDir, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const SECRET = "fork-secret-value-31337"
let mcp: McpTest

const ok = async (name: string, args: Record<string, unknown> = {}) => {
  const r = await mcp.call(name, args)
  expect(r.isError, `${name}: ${r.text}`).toBe(false)
  return r.data
}
const sh = async (workspace_id: string, script: string, extra: Record<string, unknown> = {}) =>
  (await ok("workspace_exec", { workspace_id, command: ["sh", "-c", script], ...extra }))["stdout"] as string

/** Read a shell from `cursor` until its output (from there) satisfies `done`. */
const readUntil = async (workspace_id: string, shell_id: string, cursor: number, done: (text: string) => boolean) => {
  let text = ""
  for (let i = 0; i < 40; i++) {
    const r = await ok("shell_read", { workspace_id, shell_id, cursor, wait_for_idle_ms: 300 })
    text += r["output"]
    cursor = r["next_cursor"]
    if (done(text)) return { text, cursor }
  }
  throw new Error(`shell ${shell_id} never showed what was expected; it showed ${JSON.stringify(text)}`)
}

beforeAll(async () => {
  mcp = await connectMcp({ name: "pyro-fork-test", stateDir, profile: "workspace-full" })
}, 60_000)

afterAll(() => tearDownMcp(mcp, stateDir))

describe("workspace_fork", () => {
  it("copies a running workspace, memory and disk, into copies that run on and diverge", async () => {
    const source = await ok("workspace_create", {
      environment: "tiny",
      labels: { task: "fork-test" },
      secrets: [{ name: "TOKEN", value: SECRET }]
    })
    const id = source["workspace_id"] as string
    await sh(id, "echo v1 > app.txt")
    await ok("service_start", { workspace_id: id, service_name: "sleeper", command: ["sleep", "600"] })
    const shell = await ok("shell_open", { workspace_id: id })
    const shellId = shell["shell_id"] as string
    let at = (await readUntil(id, shellId, 0, (t) => t.includes("/workspace #"))).cursor
    await ok("shell_write", { workspace_id: id, shell_id: shellId, input: "X=forty-two; echo set-$X" })
    at = (await readUntil(id, shellId, at, (t) => t.includes("set-forty-two"))).cursor

    const a = await ok("workspace_fork", { workspace_id: id, name: "try-a", labels: { task: "fork-test", try: "a" } })
    const b = await ok("workspace_fork", { workspace_id: id, labels: { task: "fork-test", try: "b" } })
    for (const copy of [a, b]) {
      expect(copy).toMatchObject({ forked_from: id, state: "started", environment: "tiny", snapshots: ["baseline"] })
      expect(copy["workspace_id"]).not.toBe(id)
    }
    expect(a["name"]).toBe("try-a")
    const [aId, bId] = [a["workspace_id"] as string, b["workspace_id"] as string]

    for (const copy of [aId, bId]) {
      // The service and the shell, with what it held, run on in the copy.
      const services = await ok("service_list", { workspace_id: copy })
      expect(services["services"].map((s: Structured) => [s["service_name"], s["state"]])).toEqual([["sleeper", "running"]])
      await ok("shell_write", { workspace_id: copy, shell_id: shellId, input: "echo again-$X" })
      await readUntil(copy, shellId, at, (t) => t.includes("again-forty-two"))
      // Its own identity, and the secret.
      expect((await sh(copy, "hostname")).trim()).toBe(`pyro-${copy}`)
      expect(await sh(copy, 'printf %s "$TOKEN" | wc -c', { secret_env: { TOKEN: "TOKEN" } })).toBe(`${SECRET.length}\n`)
    }

    // Different fixes at the same time: the files diverge, the source keeps its own.
    await Promise.all([sh(aId, "echo A > app.txt"), sh(bId, "echo B > app.txt"), sh(id, "echo S > app.txt")])
    expect(await Promise.all([aId, bId, id].map((w) => sh(w, "cat app.txt")))).toEqual(["A\n", "B\n", "S\n"])

    const listed = await ok("workspace_list", { labels: { task: "fork-test" } })
    expect(listed["count"]).toBe(3)

    // The copies outlive their source: the layers they share are hard links.
    await ok("workspace_delete", { workspace_id: id })
    expect(await sh(aId, "cat app.txt")).toBe("A\n")

    // A stopped workspace forks as its disk; the copy boots when first used.
    await ok("workspace_stop", { workspace_id: bId })
    const c = await ok("workspace_fork", { workspace_id: bId })
    expect(c).toMatchObject({ forked_from: bId, state: "stopped" })
    expect(await sh(c["workspace_id"], "cat app.txt")).toBe("B\n")
    expect(await ok("workspace_reset", { workspace_id: c["workspace_id"] })).toMatchObject({ reset_count: 1 })
    // Its snapshots came with it: the baseline is its source's, from before app.txt was written.
    expect(await sh(c["workspace_id"], "cat app.txt 2>/dev/null || echo absent")).toBe("absent\n")

    for (const w of [aId, bId, c["workspace_id"]]) await ok("workspace_delete", { workspace_id: w })
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    const left = Fs.existsSync(Path.join(stateDir, "workspaces")) ? Fs.readdirSync(Path.join(stateDir, "workspaces")) : []
    expect(left).toEqual([])
  }, 900_000)
})
