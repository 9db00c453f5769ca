/**
 * The daily loop of issue 15, through a real MCP client, with the server
 * started inside a Git checkout: create from the checkout, break the tests,
 * snapshot, fix, reset to the snapshot and see the breakage back, fork twice
 * and run different fixes in the copies at the same time, list all three by
 * label, read a summary, stop one and read a file from its disk.
 * (`claude mcp list` reporting pyro connected is test/hosts' part.)
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connectMcp, type McpTest, type Structured, tearDownMcp } from "../support/mcp.js"
import { makeStateDir, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const repo = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-loop-repo-"))
let mcp: McpTest

const ok = async (name: string, args: Record<string, unknown> = {}) => {
  const r = await mcp.call(name, args)
  expect(r.isError, `${name}: ${r.text}`).toBe(false)
  return r.data
}
const runTests = async (workspace_id: string) =>
  ((await ok("workspace_exec", { workspace_id, command: ["sh", "test.sh"] }))["stdout"] as string).trim()
const write = (workspace_id: string, text: string) => ok("workspace_file_write", { workspace_id, path: "calc.sh", text })

beforeAll(async () => {
  const git = (...args: Array<string>) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd: repo })
  Fs.writeFileSync(Path.join(repo, "calc.sh"), "echo $((2 + 2))\n")
  Fs.writeFileSync(Path.join(repo, "test.sh"), '[ "$(sh calc.sh)" = 4 ] && echo PASS || { echo FAIL; exit 1; }\n')
  git("init", "-q")
  git("add", ".")
  git("commit", "-qm", "a project with a test")
  mcp = await connectMcp({ name: "pyro-loop-test", stateDir, profile: "workspace-full", project: repo })
}, 60_000)

afterAll(() => tearDownMcp(mcp, stateDir, repo))

describe("the loop", () => {
  it("create from a checkout, break, snapshot, fix, reset, fork twice, list, summarize, stop and read the disk", async () => {
    const created = await ok("workspace_create", { environment: "tiny", labels: { loop: "issue-15" } })
    const id = created["workspace_id"] as string
    expect(created["workspace_seed"]).toMatchObject({ origin_kind: "project_path" })
    expect(await runTests(id)).toBe("PASS")

    await write(id, "echo $((2 + 3))\n")
    const broken = await ok("workspace_exec", { workspace_id: id, command: ["sh", "test.sh"] })
    expect(broken).toMatchObject({ exit_code: 1, stdout: "FAIL\n" })
    await ok("snapshot_create", { workspace_id: id, snapshot_name: "broken" })

    await write(id, "echo $((2 + 2))\n")
    expect(await runTests(id)).toBe("PASS")
    await ok("workspace_reset", { workspace_id: id, snapshot: "broken" })
    expect((await ok("workspace_exec", { workspace_id: id, command: ["sh", "test.sh"] }))["stdout"]).toBe("FAIL\n")

    // Two fixes tried at once, each in its own copy of the broken state.
    const [a, b] = await Promise.all([
      ok("workspace_fork", { workspace_id: id, name: "fix-literal", labels: { loop: "issue-15", fix: "literal" } }),
      ok("workspace_fork", { workspace_id: id, name: "fix-sum", labels: { loop: "issue-15", fix: "sum" } })
    ])
    const [aId, bId] = [a["workspace_id"] as string, b["workspace_id"] as string]
    const results = await Promise.all([
      write(aId, "echo 4\n").then(() => runTests(aId)),
      write(bId, "echo $((1 + 3))\n").then(() => runTests(bId))
    ])
    expect(results).toEqual(["PASS", "PASS"])
    expect((await ok("workspace_exec", { workspace_id: id, command: ["sh", "test.sh"] }))["stdout"]).toBe("FAIL\n")

    const listed = await ok("workspace_list", { labels: { loop: "issue-15" } })
    expect(listed["count"]).toBe(3)
    expect(new Set(listed["workspaces"].map((w: Structured) => w["workspace_id"]))).toEqual(new Set([id, aId, bId]))

    const summary = await ok("workspace_summary", { workspace_id: id })
    expect(summary["text"]).toContain("Snapshots: baseline, broken")
    expect(summary["text"]).toContain("Resets: 1")
    expect(summary["text"]).toContain("modified /workspace/calc.sh")
    const forkSummary = await ok("workspace_summary", { workspace_id: aId })
    expect(forkSummary["text"]).toContain(`Forked from: ${id}`)

    await ok("workspace_stop", { workspace_id: aId })
    const onDisk = await ok("workspace_disk_read", { workspace_id: aId, path: "calc.sh" })
    expect(onDisk["content"]).toBe("echo 4\n")

    for (const w of [id, aId, bId]) await ok("workspace_delete", { workspace_id: w })
    expect(qemuProcessesUnder(stateDir)).toEqual([])
  }, 900_000)
})
