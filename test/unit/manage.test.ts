/** Names and labels as the schema takes them, and workspace_summary's text (src/workspace/ops/summary.ts). */
import { describe, expect, it } from "vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { Labels, WorkspaceName } from "../../src/contract/workspace/labels.js"
import { summaryText } from "../../src/workspace/ops/summary.js"

const accepts = <A, I>(schema: Schema.Schema<A, I>, value: unknown) => Either.isRight(Schema.decodeUnknownEither(schema)(value))

describe("workspace names and labels", () => {
  it("takes printable names of 1 to 64 characters, and nothing else", () => {
    for (const name of ["a", "api fix #2", "é".repeat(64), "🙂 emoji", "x y"]) expect(accepts(WorkspaceName, name), name).toBe(true)
    for (const name of ["", "é".repeat(65), "a\tb", "a\nb", "a\u0000b", "\u202eevil", "a\u200bb", "a\u2028b", " a", "a "]) {
      expect(accepts(WorkspaceName, name), JSON.stringify(name)).toBe(false)
    }
  })

  it("takes up to 32 labels with lowercase keys and short printable values, even when excess keys are allowed", () => {
    expect(accepts(Labels, { "team": "core", "a.b_c-d": "", "0": "x".repeat(128) })).toBe(true)
    for (const labels of [{ Team: "x" }, { "-a": "x" }, { "a/b": "x" }, { ["k".repeat(64)]: "x" }, { a: "x".repeat(129) }, { a: "\u001b[2J" }]) {
      expect(accepts(Labels, labels), JSON.stringify(labels)).toBe(false)
    }
    expect(accepts(Labels, Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, ""])))).toBe(true)
    expect(accepts(Labels, Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, ""])))).toBe(false)
  })
})

describe("workspace_summary's text", () => {
  const base = {
    workspace_id: "0123456789ab",
    name: "fix",
    labels: { task: "1" },
    state: "started" as const,
    environment: "tiny",
    created_at: "2026-01-01T00:00:00.000Z",
    last_activity_at: "2026-01-01T00:01:00.000Z",
    expires_at: "2026-01-01T00:10:00.000Z",
    commands: { count: 0, failed_count: 0, recent: [] },
    files: null,
    services: null,
    secrets: [],
    snapshots: [],
    reset_count: 0,
    last_reset_at: null,
    forked_from: null,
    notes: []
  }

  it("says what happened in a few lines", () => {
    const text = summaryText({
      ...base,
      commands: {
        count: 12,
        failed_count: 1,
        recent: [{ sequence: 12, command: "make test", exit_code: 2, timed_out: false, duration_ms: 1500, finished_at: "" }]
      },
      files: {
        total: 51,
        added: 50,
        modified: 1,
        deleted: 0,
        type_changed: 0,
        changes: [{ path: "/workspace/a", change: "modified" }],
        truncated: true
      },
      services: {
        count: 1,
        running_count: 1,
        services: [{
          service_name: "web",
          state: "running",
          exit_code: null,
          published_ports: [{ host: "127.0.0.1", host_port: 40000, guest_port: 8000 }]
        }],
        truncated: false
      },
      secrets: ["API_TOKEN"],
      snapshots: ["baseline", "broken"],
      reset_count: 1,
      last_reset_at: "2026-01-01T00:05:00.000Z",
      forked_from: "0123456789ac"
    })
    expect(text).toBe([
      `Workspace 0123456789ab "fix" (tiny): started`,
      "Labels: task=1",
      "Created 2026-01-01T00:00:00.000Z; last activity 2026-01-01T00:01:00.000Z; expires 2026-01-01T00:10:00.000Z",
      "Commands: 12 run, 1 failed; the last 1:",
      "  #12 exit 2 in 1.5s: make test",
      "Files changed since create: 51 (50 added, 1 modified, 0 deleted)",
      "  modified /workspace/a",
      "  and 50 more (workspace_diff lists them all, with the patch)",
      "Services: 1 running of 1",
      "  web: running 127.0.0.1:40000->8000",
      "Secrets: API_TOKEN",
      "Snapshots: baseline, broken",
      "Resets: 1 (last at 2026-01-01T00:05:00.000Z; commands before it are not listed)",
      "Forked from: 0123456789ac",
      ""
    ].join("\n"))
  })

  it("shows a guest's control characters as escapes, never as themselves", () => {
    const text = summaryText({
      ...base,
      files: {
        total: 1,
        added: 1,
        modified: 0,
        deleted: 0,
        type_changed: 0,
        changes: [{ path: "/workspace/\u001b]0;owned\u0007\u202e", change: "added" }],
        truncated: false
      },
      notes: ["services: the VM went away"]
    })
    expect(text).toContain("added /workspace/\\u{1b}]0;owned\\u{7}\\u{202e}\n")
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u202e]/)
    expect(text).toContain("Not shown: services: the VM went away\n")
  })
})
