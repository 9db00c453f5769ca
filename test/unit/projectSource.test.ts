/**
 * Project sources without a VM: the operator's flags (src/workspace/project/flags.ts),
 * the tracked-file listing and the walk it selects, the description, and the
 * flags passed on into a chat host's registered command.
 */
import { describe, expect, it } from "vitest"
import * as Either from "effect/Either"
import type * as Fs from "node:fs"
import { serverLaunch } from "../../src/chatHosts/launch.js"
import { createDescriptionWith } from "../../src/workspace/project/describe.js"
import { projectRequest } from "../../src/workspace/project/flags.js"
import { parseTrackedListing, trackedSelection } from "../../src/workspace/project/seed.js"

const problem = (flags: Parameters<typeof projectRequest>[0]) =>
  Either.match(projectRequest(flags, "/home/u/app"), { onLeft: (p) => p, onRight: () => undefined })

describe("project flags", () => {
  it("detects by default, and --no-project-source turns it off", () => {
    expect(projectRequest({}, "/home/u/app")).toEqual(Either.right({ kind: "detect", cwd: "/home/u/app" }))
    expect(projectRequest({ noProjectSource: true }, "/x")).toEqual(Either.right({ kind: "none" }))
  })

  it("resolves --project-path and a local --repo-url against the start directory; keeps a file:// URL as given", () => {
    expect(projectRequest({ projectPath: "../lib" }, "/home/u/app")).toEqual(Either.right({ kind: "project_path", path: "/home/u/lib" }))
    expect(projectRequest({ repoUrl: "repo.git", repoRef: "v1.2" }, "/srv")).toEqual(
      Either.right({ kind: "repo_url", url: "/srv/repo.git", ref: "v1.2" })
    )
    expect(projectRequest({ repoUrl: "file:///srv/repo.git" }, "/x")).toEqual(
      Either.right({ kind: "repo_url", url: "file:///srv/repo.git", ref: null })
    )
    expect(projectRequest({ repoUrl: "./odd:name" }, "/srv")).toEqual(Either.right({ kind: "repo_url", url: "/srv/odd:name", ref: null }))
  })

  it("refuses every network address for --repo-url", () => {
    for (const url of ["https://example.com/x.git", "http://example.com/x", "ssh://git@example.com/x", "git://example.com/x", "HTTPS://EXAMPLE.COM/x"]) {
      expect(problem({ repoUrl: url })).toMatch(/only a local path or a file:\/\/ URL is accepted/)
    }
    expect(problem({ repoUrl: "git@github.com:o/r.git" })).toMatch(/looks like an ssh address/)
    expect(problem({ repoUrl: "ext::sh -c touch% /tmp/x" })).toMatch(/white space/)
    expect(problem({ repoUrl: "ext::sh" })).toMatch(/looks like an ssh address/)
    expect(problem({ repoUrl: "file://example.com/srv/x" })).toMatch(/names the host example.com/)
    expect(problem({ repoUrl: "" })).toMatch(/is empty/)
  })

  it("refuses combinations that cannot be meant, and refs that could be taken for options", () => {
    expect(problem({ projectPath: "/a", repoUrl: "/b" })).toBe("give --project-path or --repo-url, not both")
    expect(problem({ repoRef: "main" })).toBe("--repo-ref goes with --repo-url")
    expect(problem({ noProjectSource: true, projectPath: "/a" })).toMatch(/^--no-project-source turns project sources off/)
    expect(problem({ repoUrl: "/r", repoRef: "--upload-pack=evil" })).toMatch(/starts with "-"/)
    expect(problem({ repoUrl: "/r", repoRef: "a b" })).toMatch(/white space/)
    expect(problem({ projectPath: "" })).toBe("--project-path is empty")
  })
})

const stat = (directory: boolean) => ({ isDirectory: () => directory }) as Fs.Stats

describe("tracked files", () => {
  it("parses git ls-files -z --stage: submodules apart, conflicted paths once, any byte in a name", () => {
    const listing = [
      "100644 aaaa 0\tREADME.md",
      "120000 bbbb 0\tsrc/link",
      "160000 cccc 0\tvendor/lib",
      "100644 dddd 1\tsrc/conflict.txt",
      "100644 eeee 2\tsrc/conflict.txt",
      "100755 ffff 0\tname with\ttab and\nnewline"
    ].join("\0") + "\0"
    const tracked = parseTrackedListing(listing)
    expect([...tracked.files]).toEqual(["README.md", "src/link", "src/conflict.txt", "name with\ttab and\nnewline"])
    expect(tracked.submodules).toEqual(["vendor/lib"])
  })

  it("selects tracked entries and the directories that lead to them, nothing else", () => {
    const select = trackedSelection({ files: new Set(["a/b/c.txt", "top.txt"]), submodules: [] })
    expect(select("a", stat(true))).toBe(true)
    expect(select("a/b", stat(true))).toBe(true)
    expect(select("a/b/c.txt", stat(false))).toBe(true)
    expect(select("top.txt", stat(false))).toBe(true)
    expect(select("a/untracked.txt", stat(false))).toBe(false)
    expect(select("node_modules", stat(true))).toBe(false)
    // A tracked file replaced by a directory is not entered.
    expect(select("top.txt", stat(true))).toBe(false)
    // A directory on the way replaced by a symlink is not taken (it is not a tracked entry).
    expect(select("a", stat(false))).toBe(false)
  })
})

describe("the description and the chat hosts' command", () => {
  it("names the source in workspace_create's description, and leaves it alone without one", () => {
    expect(createDescriptionWith("Rest.", { kind: "none" })).toBe("Rest.")
    expect(createDescriptionWith("Rest.", { kind: "project_path", root: "/src/app" })).toBe(
      "Create and start a persistent workspace. If `seed_path` is omitted, the server seeds from the Git-tracked files of /src/app. Rest."
    )
    expect(
      createDescriptionWith("Rest.", { kind: "repo_url", url: "file:///r", ref: "main", commit: "abc1234def", checkout: "/tmp/x" })
    ).toContain("seeds from the Git-tracked files of file:///r at ref main (commit abc1234).")
  })

  it("passes --project-path (absolute), --repo-url and --repo-ref into the registered mcp serve", () => {
    expect(serverLaunch({ projectPath: "." }).args).toEqual(["-y", "pyro-sandbox", "mcp", "serve", "--project-path", process.cwd()])
    expect(serverLaunch({ profile: "vm-run", repoUrl: "file:///r", repoRef: "v1" }).args).toEqual(
      ["-y", "pyro-sandbox", "mcp", "serve", "--profile", "vm-run", "--repo-url", "file:///r", "--repo-ref", "v1"]
    )
  })
})
