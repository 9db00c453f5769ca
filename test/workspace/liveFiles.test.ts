/**
 * Live workspaces through a real MCP client over stdio: a seeded git
 * repository edited with file write and patch apply while a long command
 * runs in the same workspace, the change seen in workspace_diff, the tree
 * exported to the host, and `git diff` on the host agreeing. Then what a
 * hostile guest can put in /workspace never escapes an export.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { connectMcp, type McpTest, type Structured, tearDownMcp, type ToolResult } from "../support/mcp.js"
import { makeStateDir } from "../support/vm.js"

const stateDir = makeStateDir()
const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-live-"))
const repo = Path.join(work, "repo")

const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd, encoding: "utf8" })

let mcp: McpTest | undefined
let workspaceId: string

const call = (name: string, args: Record<string, unknown> = {}, signal?: AbortSignal): Promise<ToolResult> =>
  mcp!.call(name, args, signal)

beforeAll(async () => {
  Fs.mkdirSync(Path.join(repo, "src"), { recursive: true })
  Fs.writeFileSync(Path.join(repo, "README.md"), "# demo\n\nA small project.\n")
  Fs.writeFileSync(Path.join(repo, "src", "app.py"), "def greet(name):\n    return 'hello ' + name\n\nprint(greet('world'))\n")
  git(repo, "init", "-q")
  git(repo, "add", ".")
  git(repo, "commit", "-qm", "initial")
  mcp = await connectMcp({ name: "pyro-live-test", stateDir, env: { PYRO_IMPORT_ROOTS: work } })
  const created = await call("workspace_create", { environment: "tiny", mem_mib: 256, seed_path: repo })
  expect(created.isError).toBe(false)
  workspaceId = created.data["workspace_id"]
}, 240_000)

afterAll(() => tearDownMcp(mcp, stateDir, work))

describe("live workspace files over MCP", () => {
  it("edits a seeded repository while a command runs, and the diff, the export and git agree", async () => {
    // A long command in flight on the same workspace, from the same client.
    const cancel = new AbortController()
    const sleeping = call("workspace_exec", { workspace_id: workspaceId, command: "sleep 60", timeout_seconds: 90 }, cancel.signal)
      .catch((e: Error) => e)
    await new Promise((r) => setTimeout(r, 1000))
    const started = Date.now()

    const listed = await call("workspace_file_list", { workspace_id: workspaceId, path: "src" })
    expect(listed.data["entries"].map((e: Structured) => e["path"])).toEqual(["/workspace/src/app.py"])

    const written = await call("workspace_file_write", {
      workspace_id: workspaceId,
      path: "src/util.py",
      text: "def shout(s):\n    return s.upper()\n"
    })
    expect(written.data).toMatchObject({ path: "/workspace/src/util.py", bytes_written: 35 })

    const patched = await call("workspace_patch_apply", {
      workspace_id: workspaceId,
      patch: "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,4 +1,4 @@\n def greet(name):\n-    return 'hello ' + name\n+    return 'hello, ' + name\n \n print(greet('world'))\n"
    })
    expect(patched.data).toMatchObject({ changed: true, files: [{ path: "/workspace/src/app.py", change: "modified" }] })

    // A patch that no longer applies changes nothing, and says which file.
    const conflict = await call("workspace_patch_apply", {
      workspace_id: workspaceId,
      patch: "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-# demo\n+# DEMO\n" +
        "--- a/src/app.py\n+++ b/src/app.py\n@@ -2 +2 @@\n-    return 'hello ' + name\n+    return 'hi ' + name\n"
    })
    expect(conflict.isError).toBe(true)
    expect(conflict.text).toContain("workspace_patch_conflict")
    expect(conflict.text).toContain("/workspace/src/app.py")
    const readme = await call("workspace_file_read", { workspace_id: workspaceId, path: "README.md" })
    expect(readme.data).toMatchObject({ content: "# demo\n\nA small project.\n", encoding: "utf-8", truncated: false })

    const diff = await call("workspace_diff", { workspace_id: workspaceId })
    expect(diff.data["changed"]).toBe(true)
    expect(diff.data["summary"]).toMatchObject({ total: 2, added: 1, modified: 1, deleted: 0 })
    expect(diff.data["patch"]).toContain("+    return 'hello, ' + name")

    // None of it waited for the sleep.
    expect(Date.now() - started).toBeLessThan(50_000)
    const status = await call("workspace_status", { workspace_id: workspaceId })
    expect(status.data["command_count"]).toBe(0)

    const out = Path.join(work, "exported")
    const exported = await call("workspace_export", { workspace_id: workspaceId, path: "/workspace", output_path: out })
    expect(exported.data).toMatchObject({ artifact_type: "directory", output_path: out })
    const hostDiff = git(out, "status", "--porcelain")
    expect(hostDiff.split("\n").filter(Boolean).sort()).toEqual([" M src/app.py", "?? src/util.py"])
    const hostPatch = git(out, "diff")
    for (const line of ["-    return 'hello ' + name", "+    return 'hello, ' + name"]) {
      expect(hostPatch).toContain(line)
      expect(diff.data["patch"]).toContain(line)
    }

    // Still running all along; cancelling the call ends that command (and only it).
    cancel.abort()
    expect(await sleeping).toBeInstanceOf(Error)
    const after = await call("workspace_exec", { workspace_id: workspaceId, command: "cat src/util.py" })
    expect(after.data).toMatchObject({ exit_code: 0, stdout: "def shout(s):\n    return s.upper()\n" })
  }, 240_000)

  it("never lets hostile guest content escape an export, and names the entry", async () => {
    const setup = await call("workspace_exec", {
      workspace_id: workspaceId,
      command: [
        "mkdir -p /workspace/bad/links /workspace/bad/dev /workspace/bad/big /workspace/bad/names",
        "ln -s /etc/passwd /workspace/bad/links/out",
        "mknod /workspace/bad/dev/sda b 8 0",
        "truncate -s 9G /workspace/bad/big/huge",
        "d=/workspace/bad/deep; for i in $(seq 130); do d=$d/d; done; mkdir -p $d",
        "touch \"/workspace/bad/names/$(printf 'x\\033[31mred')\"",
        "mkdir /workspace/bad/fifo && mkfifo /workspace/bad/fifo/pipe"
      ].join(" && ")
    })
    expect(setup.data["exit_code"]).toBe(0)
    const cases: Array<[string, string, string]> = [
      ["bad/links", "/workspace/bad/links/out", "absolute"],
      ["bad/dev", "/workspace/bad/dev/", "device"],
      ["bad/big", "/workspace/bad/big/huge", "bytes"],
      ["bad/deep", "/workspace/bad/deep/", "deep"],
      ["bad/names", "/workspace/bad/names/x", "control character"],
      ["bad/fifo", "/workspace/bad/fifo/pipe", "fifo"]
    ]
    for (const [path, entry, reason] of cases) {
      const out = Path.join(work, `hostile-${path.replace("/", "-")}`)
      const r = await call("workspace_export", { workspace_id: workspaceId, path, output_path: out })
      expect([path, r.isError]).toEqual([path, true])
      expect(r.text).toContain("workspace_export_failed")
      expect(r.text).toContain(entry)
      expect(r.text.toLowerCase()).toContain(reason)
      expect(Fs.existsSync(out)).toBe(false)
    }
    expect(Fs.readdirSync(work).filter((n) => n.startsWith(".pyro-export-"))).toEqual([])
    // Outside the roots a tool caller may write into: refused before the guest is asked.
    const outside = await call("workspace_export", { workspace_id: workspaceId, path: "README.md", output_path: "/tmp/pyro-escape" })
    expect(outside.isError).toBe(true)
    expect(outside.text).toContain("is not below the directories this server may write into")
    expect(Fs.existsSync("/tmp/pyro-escape")).toBe(false)
    // The root itself is never an output, however it is spelled, even with overwrite.
    for (const spelled of [work, `${work}/`, `${work}/sub/..`]) {
      const root = await call("workspace_export", { workspace_id: workspaceId, path: "README.md", output_path: spelled, overwrite: true })
      expect([spelled, root.isError]).toEqual([spelled, true])
    }
    expect(Fs.existsSync(Path.join(work, "repo", "README.md"))).toBe(true)
  }, 240_000)

  it("reads binary files as base64 and says so, and marks truncation", async () => {
    await call("workspace_exec", { workspace_id: workspaceId, command: "printf '\\377\\000\\001' > bin.dat; seq 1 20000 > long.txt" })
    const bin = await call("workspace_file_read", { workspace_id: workspaceId, path: "bin.dat" })
    expect(bin.data).toMatchObject({ encoding: "base64", content: "/wAB", size_bytes: 3 })
    const long = await call("workspace_file_read", { workspace_id: workspaceId, path: "long.txt", max_bytes: 10 })
    expect(long.data).toMatchObject({ content: "1\n2\n3\n4\n5\n", truncated: true, bytes_read: 10 })
    const escape = await call("workspace_file_read", { workspace_id: workspaceId, path: "../etc/passwd" })
    expect(escape.isError).toBe(true)
    expect(escape.text).toContain("must not contain ..")
    await call("workspace_exec", { workspace_id: workspaceId, command: "ln -s /etc/passwd /workspace/pw" })
    const throughLink = await call("workspace_file_read", { workspace_id: workspaceId, path: "pw" })
    expect(throughLink.isError).toBe(true)
    expect(throughLink.text).toContain("outside")
    // A link is never patched (writing would turn it into a file); the conflict says so.
    const onLink = await call("workspace_patch_apply", { workspace_id: workspaceId, patch: "--- a/pw\n+++ b/pw\n@@ -1 +1 @@\n-x\n+y\n" })
    expect(onLink.isError).toBe(true)
    expect(onLink.text).toContain("is a symbolic link")
  }, 240_000)
})
