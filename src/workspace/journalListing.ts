/**
 * workspace_logs for a tool caller: every entry, newest first in line for
 * room, each stream cut to a share of the output budget (head and tail), so
 * that a long-lived workspace's journal never grows a result past what a
 * model (or an MCP client's message limit) can take. The journal on disk
 * keeps up to 64 KiB per stream per entry; a command whose output was longer
 * left all of it in the guest, and the marker says where.
 */
import type { JournalEntry } from "../contract/workspace.js"
import { shapeOutput } from "../vm/output.js"

/** Output bytes a listing carries in all, in budgets. */
const LISTING_BUDGETS = 8
/** Each stream of each entry gets at most this share of the budget. */
const ENTRY_SHARE = 4

const KEPT_AT = /; ((?:all of it is|its first \d+ bytes are) in \S+)\]/

const encoder = new TextEncoder()

const shapeStream = (name: "stdout" | "stderr", text: string, total: number, budget: number) => {
  const bytes = encoder.encode(text)
  return shapeOutput({ name, head: bytes, tail: bytes, total, budget, keptAt: KEPT_AT.exec(text)?.[1] })
}

export const listingForCaller = (entries: ReadonlyArray<JournalEntry>, budget: number): Array<JournalEntry> => {
  const perStream = Math.max(512, Math.floor(budget / ENTRY_SHARE))
  let room = budget * LISTING_BUDGETS
  const out: Array<JournalEntry> = []
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!
    const share = room >= 2 * perStream ? perStream : 0
    const stdout = shapeStream("stdout", entry.stdout, entry.stdout_bytes, share)
    const stderr = shapeStream("stderr", entry.stderr, entry.stderr_bytes, share)
    room -= Buffer.byteLength(stdout.text) + Buffer.byteLength(stderr.text)
    out.push({
      ...entry,
      stdout: stdout.text,
      stderr: stderr.text,
      stdout_truncated: entry.stdout_truncated || stdout.truncated,
      stderr_truncated: entry.stderr_truncated || stderr.truncated
    })
  }
  return out.reverse()
}
