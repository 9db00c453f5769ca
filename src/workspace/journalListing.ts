/**
 * workspace_logs for a tool caller: every entry, newest first in line for
 * room, each stream cut to a share of the output budget (head and tail), so
 * that a long-lived workspace's journal never grows a result past what a
 * model (or an MCP client's message limit) can take. The journal on disk
 * keeps up to 64 KiB per stream per entry; a command whose output was longer
 * left all of it in the guest, and the marker says where.
 */
import type { JournalEntry } from "../contract/workspace/exec.js"
import { evenBudget, shapeOutput } from "../vm/output.js"
import type { JournalLine } from "./store.js"

/** Output bytes a listing carries in all, in budgets (counted as JSON, where a control byte costs six). */
const LISTING_BUDGETS = 8
/** Each stream of each entry gets at most this share of the budget. */
const ENTRY_SHARE = 4

const encoder = new TextEncoder()

/**
 * An entry's stream cut to `share` bytes. The journal's text of a long stream
 * is already its head and its tail around a marker, so cutting its ends keeps
 * the stream's real ends, and the new marker counts against the stream's
 * real size.
 */
const shapeStream = (name: "stdout" | "stderr", text: string, total: number, share: number, keptAt: string | undefined) => {
  const bytes = encoder.encode(text)
  if (bytes.byteLength <= share) return { text, truncated: false }
  return shapeOutput({ name, head: bytes, tail: bytes, total: Math.max(total, bytes.byteLength), budget: evenBudget(share), keptAt })
}

const jsonBytes = (text: string) => Buffer.byteLength(JSON.stringify(text))

export const listingForCaller = (lines: ReadonlyArray<JournalLine>, budget: number): Array<JournalEntry> => {
  const perStream = Math.max(512, Math.floor(budget / ENTRY_SHARE))
  let room = budget * LISTING_BUDGETS
  const out: Array<JournalEntry> = []
  for (let i = lines.length - 1; i >= 0; i--) {
    const { kept_at: keptAt, ...entry } = lines[i]!
    const share = room >= 2 * perStream ? perStream : 0
    const stdout = shapeStream("stdout", entry.stdout, entry.stdout_bytes, share, keptAt.stdout)
    const stderr = shapeStream("stderr", entry.stderr, entry.stderr_bytes, share, keptAt.stderr)
    room -= jsonBytes(stdout.text) + jsonBytes(stderr.text)
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
