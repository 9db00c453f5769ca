/**
 * Project-aware start: `pyro mcp serve` in a Git checkout, with
 * --project-path, and with --repo-url/--repo-ref, through a real MCP client
 * and real VMs. A create without seed_path gets exactly the tracked files
 * (an uncommitted edit included; untracked, ignored and deleted files not),
 * a tracked symlink to /etc/passwd is refused by the archive policy as in any
 * seed, and a repository clone lives only as long as its server.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { eventually, makeStateDir, pyroBin, qemuProcessesUnder, repoRoot } from "../support/vm.js"

const { Pyro, PyroError } = (await import(Path.join(repoRoot, "dist", "sdk.js"))) as typeof import("../../src/entrypoints/sdk.js")

const stateDir = makeStateDir()
const work = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-project-test-")))
const repo = Path.join(work, "repo")
/** The servers' TMPDIR, so a clone they make can be watched coming and going. */
const serverTmp = Path.join(work, "tmp")

const git = (...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd: repo, encoding: "utf8" }).trim()

let tagCommit = ""

beforeAll(() => {
  Fs.mkdirSync(Path.join(repo, "src"), { recursive: true })
  Fs.mkdirSync(serverTmp)
  git("init", "-q")
  // v1: what --repo-ref v1 must give, and nothing of what came later.
  Fs.writeFileSync(Path.join(repo, "README.md"), "# demo\n")
  Fs.writeFileSync(Path.join(repo, "only-in-v1.txt"), "old\n")
  git("add", ".")
  git("commit", "-qm", "v1")
  git("tag", "v1")
  tagCommit = git("rev-parse", "v1")
  git("rm", "-q", "only-in-v1.txt")
  Fs.writeFileSync(Path.join(repo, ".gitignore"), "ignored.txt\n")
  Fs.writeFileSync(Path.join(repo, "src", "app.txt"), "app\n")
  Fs.writeFileSync(Path.join(repo, "src", "edit.txt"), "committed\n")
  Fs.symlinkSync("../README.md", Path.join(repo, "src", "readme-link"))
  Fs.symlinkSync("/etc/passwd", Path.join(repo, "passwd-link"))
  git("add", ".")
  git("commit", "-qm", "main")
  // The working tree now: an uncommitted edit, an untracked and an ignored file.
  Fs.writeFileSync(Path.join(repo, "src", "edit.txt"), "edited, not committed\n")
  Fs.writeFileSync(Path.join(repo, "untracked.txt"), "untracked\n")
  Fs.writeFileSync(Path.join(repo, "ignored.txt"), "ignored\n")
})

afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
  Fs.rmSync(work, { recursive: true, force: true })
})

const serve = async (flags: ReadonlyArray<string>, cwd: string) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [pyroBin, "mcp", "serve", ...flags],
    cwd,
    env: { ...process.env, PYRO_STATE_DIR: stateDir, TMPDIR: serverTmp } as Record<string, string>,
    stderr: "pipe"
  })
  const client = new Client({ name: "pyro-project-test", version: "1.0.0" })
  await client.connect(transport)
  return client
}

type Structured = Record<string, any>
const call = async (client: Client, name: string, args: Record<string, unknown>) => {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 240_000 })
  const text = (result.content as Array<{ text: string }>)[0]?.text ?? ""
  const data = (result.structuredContent ?? (result.isError ? undefined : JSON.parse(text))) as Structured
  return { isError: result.isError === true, data, text }
}

const createDescription = async (client: Client) =>
  (await client.listTools()).tools.find((t) => t.name === "workspace_create")!.description

/** Every path under /workspace with its kind, and what the edited file and the link hold. */
const workspaceTree = async (client: Client, workspaceId: string) => {
  const ran = await call(client, "workspace_exec", {
    workspace_id: workspaceId,
    // BusyBox's find has no -printf.
    command: "find . | sort | while read -r p; do if [ -L \"$p\" ]; then echo \"L $p -> $(readlink \"$p\")\"; " +
      "elif [ -d \"$p\" ]; then echo \"d $p\"; else echo \"f $p\"; fi; done"
  })
  expect(ran.data["exit_code"]).toBe(0)
  return ran.data["stdout"].trim().split("\n")
}

const CHECKOUT_TREE = [
  "d .",
  "f ./.gitignore",
  "f ./README.md",
  "d ./src",
  "f ./src/app.txt",
  "f ./src/edit.txt",
  "L ./src/readme-link -> ../README.md"
]

describe("pyro mcp serve in a Git checkout", () => {
  it("describes the checkout, refuses its link to /etc/passwd, then seeds exactly its tracked files", async () => {
    const client = await serve([], Path.join(repo, "src"))
    try {
      expect(await createDescription(client)).toMatch(
        new RegExp(`^Create and start a persistent workspace\\. If \`seed_path\` is omitted, the server seeds from the Git-tracked files of ${repo}\\. `)
      )

      const refused = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256 })
      expect(refused.isError).toBe(true)
      expect(refused.text).toMatch(/^unsafe_import_entry: .*entry "passwd-link" is a symlink to an absolute path/)
      expect(refused.text).not.toContain("root:x:0:0")
      expect((await call(client, "workspace_list", {})).data["workspaces"]).toEqual([])

      // Still tracked, gone from the working tree: left out.
      Fs.unlinkSync(Path.join(repo, "passwd-link"))
      const created = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256 })
      expect(created.isError, created.text).toBe(false)
      expect(created.data["workspace_seed"]).toEqual({
        mode: "directory",
        seed_path: null,
        origin_kind: "project_path",
        origin_ref: repo,
        files: 4,
        bytes: expect.any(Number)
      })
      const id = created.data["workspace_id"]
      expect(await workspaceTree(client, id)).toEqual(CHECKOUT_TREE)
      const edited = await call(client, "workspace_file_read", { workspace_id: id, path: "src/edit.txt" })
      expect(edited.data["content"]).toBe("edited, not committed\n")
      const status = await call(client, "workspace_status", { workspace_id: id })
      expect(status.data["workspace_seed"]["origin_kind"]).toBe("project_path")
      await call(client, "workspace_delete", { workspace_id: id })
    } finally {
      await client.close()
    }
  }, 400_000)

  it("--project-path names the checkout when the server starts elsewhere", async () => {
    const client = await serve(["--project-path", repo], work)
    try {
      expect(await createDescription(client)).toContain(`the server seeds from the Git-tracked files of ${repo}.`)
      const created = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256 })
      expect(created.isError, created.text).toBe(false)
      expect(created.data["workspace_seed"]).toMatchObject({ origin_kind: "project_path", origin_ref: repo, files: 4 })
      expect(await workspaceTree(client, created.data["workspace_id"])).toEqual(CHECKOUT_TREE)
      await call(client, "workspace_delete", { workspace_id: created.data["workspace_id"] })
    } finally {
      await client.close()
    }
  }, 400_000)

  it("--repo-url file://... --repo-ref v1 seeds the tag's files from a clone that goes when the server does", async () => {
    const url = `file://${repo}`
    const client = await serve(["--repo-url", url, "--repo-ref", "v1"], work)
    let clones: Array<string> = []
    try {
      clones = Fs.readdirSync(serverTmp).filter((name) => name.startsWith("pyro-project-"))
      expect(clones).toHaveLength(1)
      expect(await createDescription(client)).toContain(
        `the server seeds from the Git-tracked files of ${url} at ref v1 (commit ${tagCommit.slice(0, 7)}).`
      )
      const created = await call(client, "workspace_create", { environment: "tiny", mem_mib: 256 })
      expect(created.isError, created.text).toBe(false)
      expect(created.data["workspace_seed"]).toMatchObject({ mode: "directory", seed_path: null, origin_kind: "repo_url", origin_ref: `${url}@${tagCommit}`, files: 2 })
      expect(await workspaceTree(client, created.data["workspace_id"])).toEqual(["d .", "f ./README.md", "f ./only-in-v1.txt"])
      await call(client, "workspace_delete", { workspace_id: created.data["workspace_id"] })
    } finally {
      await client.close()
    }
    expect(await Effect.runPromise(eventually(() => !Fs.existsSync(Path.join(serverTmp, clones[0]!)), 15_000))).toBe(true)
  }, 400_000)
})

describe("the SDK's project options", () => {
  it("seeds from repoUrl at repoRef, names it in createServer's tools, and refuses a bad combination at once", async () => {
    expect(() => new Pyro({ stateDir, projectPath: repo, repoUrl: repo })).toThrow(PyroError)
    expect(() => new Pyro({ stateDir, repoUrl: "https://example.com/x.git" })).toThrow(/only a local path or a file:\/\/ URL/)
    const pyro = new Pyro({ stateDir, repoUrl: repo, repoRef: "v1" })
    try {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
      await pyro.createServer().connect(serverSide)
      const client = new Client({ name: "sdk-project-test", version: "1.0.0" })
      await client.connect(clientSide)
      expect(await createDescription(client)).toContain(`the Git-tracked files of ${repo} at ref v1 (commit ${tagCommit.slice(0, 7)}).`)
      await client.close()
      const created = await pyro.createWorkspace({ environment: "tiny", mem_mib: 256 })
      expect(created.workspace_seed).toMatchObject({ origin_kind: "repo_url", origin_ref: `${repo}@${tagCommit}`, files: 2 })
      await pyro.deleteWorkspace(created.workspace_id)
    } finally {
      await pyro.close()
    }
  }, 400_000)
})

describe("pyro mcp serve's project flags", () => {
  const start = (...flags: Array<string>) =>
    spawnSync(process.execPath, [pyroBin, "mcp", "serve", ...flags], {
      cwd: work,
      env: { ...process.env, PYRO_STATE_DIR: stateDir, TMPDIR: serverTmp },
      input: "",
      encoding: "utf8",
      timeout: 60_000
    })

  it("refuses a network URL, and --project-path with --repo-url, at start", () => {
    const https = start("--repo-url", "https://example.com/x.git")
    expect(https.status).toBe(2)
    expect(https.stderr).toContain("only a local path or a file:// URL is accepted")
    const both = start("--project-path", repo, "--repo-url", repo)
    expect(both.status).toBe(2)
    expect(both.stderr).toContain("give --project-path or --repo-url, not both")
  })

  it("fails at start on a --repo-ref the repository lacks, leaving no clone", () => {
    const missing = start("--repo-url", repo, "--repo-ref", "no-such-ref")
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain("--repo-ref no-such-ref names no branch, tag or commit")
    expect(Fs.readdirSync(serverTmp).filter((name) => name.startsWith("pyro-project-"))).toEqual([])
  })
})
