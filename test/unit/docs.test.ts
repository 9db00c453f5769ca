/** The docs stand on their own in any clone: links resolve inside the repository, and no path points outside it. */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const repoRoot = Path.resolve(import.meta.dirname, "../..")
const docs = [
  "README.md",
  ...Fs.readdirSync(Path.join(repoRoot, "docs")).filter((n) => n.endsWith(".md")).map((n) => `docs/${n}`),
  ...Fs.readdirSync(Path.join(repoRoot, "examples")).filter((n) => n.endsWith(".md")).map((n) => `examples/${n}`)
]

describe("docs", () => {
  it("link only to files inside the repository, and those exist", () => {
    const bad: Array<string> = []
    for (const doc of docs) {
      const text = Fs.readFileSync(Path.join(repoRoot, doc), "utf8")
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue // a URL
        const resolved = Path.resolve(Path.dirname(Path.join(repoRoot, doc)), target!)
        if (!resolved.startsWith(repoRoot + Path.sep) || !Fs.existsSync(resolved)) bad.push(`${doc}: ${target}`)
      }
      // A build machine's folders mean nothing in a user's clone.
      for (const [found] of text.matchAll(/(?:\/work\/[\w./-]+|\.\.\/shared\b[\w./-]*)/g)) bad.push(`${doc}: ${found}`)
    }
    expect(bad).toEqual([])
  })
})
