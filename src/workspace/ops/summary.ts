/**
 * workspace_summary: what happened in a workspace, as fields and as a few
 * lines a person can read. Commands come from the host's journal; changed
 * files (against the baseline, without the patch) and services from the
 * guest, but only while its VM runs: a summary never boots one.
 */
import * as Effect from "effect/Effect"
import { errorMessage } from "../../contract/errors.js"
import {
  SUMMARY_COMMAND_CHARS,
  SUMMARY_MAX_COMMANDS,
  SUMMARY_MAX_FILES,
  SUMMARY_MAX_SERVICES,
  type WorkspaceReport
} from "../../contract/workspace/manage.js"
import { PyroConfig } from "../../services/PyroConfig.js"
import { type WorkspaceGuest, WorkspaceManager } from "../../services/WorkspaceManager.js"
import type { TreeDiff } from "../diff.js"
import { type JournalLine, readJournal, workspacePaths } from "../store.js"
import { compareWithBaseline } from "./export.js"
import { workspaceIdentity } from "./list.js"
import { serviceCommandLine, serviceListing } from "./services.js"

type Report = Omit<WorkspaceReport, "text">

const cut = (text: string, max: number) => ([...text].length <= max ? text : `${[...text].slice(0, max - 1).join("")}…`)

/** Text as a terminal may show it: control and format characters as escapes (a guest chose the file names). */
const shown = (text: string) => text.replace(/[\p{C}\u2028\u2029]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)

const commandsOf = (journal: ReadonlyArray<JournalLine>): Report["commands"] => ({
  count: journal.length,
  failed_count: journal.filter((e) => e.exit_code !== 0 || e.timed_out).length,
  recent: journal.slice(-SUMMARY_MAX_COMMANDS).map((e) => ({
    sequence: e.sequence,
    command: cut(serviceCommandLine(e.command), SUMMARY_COMMAND_CHARS),
    exit_code: e.exit_code,
    timed_out: e.timed_out,
    duration_ms: e.duration_ms,
    finished_at: e.finished_at
  }))
})

const filesOf = (diff: TreeDiff): NonNullable<Report["files"]> => ({
  total: diff.total,
  added: diff.counts.added,
  modified: diff.counts.modified,
  deleted: diff.counts.deleted,
  type_changed: diff.counts.type_changed,
  changes: diff.entries.slice(0, SUMMARY_MAX_FILES).map(({ change, path }) => ({ path, change })),
  truncated: diff.total > SUMMARY_MAX_FILES
})

const servicesOf = (listing: Effect.Effect.Success<ReturnType<typeof serviceListing>>): NonNullable<Report["services"]> => ({
  count: listing.count,
  running_count: listing.running_count,
  services: listing.services.slice(0, SUMMARY_MAX_SERVICES).map((s) => ({
    service_name: s.service_name,
    state: s.state,
    exit_code: s.exit_code,
    published_ports: s.published_ports
  })),
  truncated: listing.count > SUMMARY_MAX_SERVICES
})

/** Changed files and services from the running guest; what cannot be read becomes a note. */
const fromGuest = (guest: WorkspaceGuest, notes: Array<string>) =>
  Effect.all({
    files: compareWithBaseline(guest, { patch: false }).pipe(
      Effect.map(filesOf),
      Effect.catchAll((e) => Effect.sync(() => (notes.push(`changed files: ${errorMessage(e)}`), null)))
    ),
    services: serviceListing(guest).pipe(
      Effect.map(servicesOf),
      Effect.catchAll((e) => Effect.sync(() => (notes.push(`services: ${errorMessage(e)}`), null)))
    )
  })

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

/** The report as lines a person can read; every list in it is as capped as the fields. */
export const summaryText = (r: Report) => {
  const lines = [
    `Workspace ${r.workspace_id}${r.name === null ? "" : ` "${shown(r.name)}"`} (${r.environment}): ${r.state}`
  ]
  const labels = Object.entries(r.labels)
  if (labels.length > 0) lines.push(`Labels: ${labels.map(([k, v]) => `${k}=${shown(v)}`).join(", ")}`)
  lines.push(`Created ${r.created_at}; last activity ${r.last_activity_at}; expires ${r.expires_at}`)
  const c = r.commands
  if (c.count === 0) lines.push("Commands: none run")
  else {
    lines.push(`Commands: ${c.count} run, ${c.failed_count} failed${c.recent.length < c.count ? `; the last ${c.recent.length}:` : ":"}`)
    for (const e of c.recent) {
      const outcome = e.timed_out ? `timed out after ${seconds(e.duration_ms)}` : `exit ${e.exit_code} in ${seconds(e.duration_ms)}`
      lines.push(`  #${e.sequence} ${outcome}: ${shown(e.command)}`)
    }
  }
  if (r.files) {
    const f = r.files
    if (f.total === 0) lines.push("Files: none changed since create")
    else {
      lines.push(
        `Files changed since create: ${f.total} (${f.added} added, ${f.modified} modified, ${f.deleted} deleted` +
          `${f.type_changed > 0 ? `, ${f.type_changed} changed type` : ""})`
      )
      for (const e of f.changes) lines.push(`  ${e.change} ${shown(e.path)}`)
      if (f.truncated) lines.push(`  and ${f.total - f.changes.length} more (workspace_diff lists them all, with the patch)`)
    }
  }
  if (r.services) {
    const s = r.services
    if (s.count === 0) lines.push("Services: none")
    else {
      lines.push(`Services: ${s.running_count} running of ${s.count}`)
      for (const x of s.services) {
        const ports = x.published_ports.map((p) => ` ${p.host}:${p.host_port}->${p.guest_port}`).join("")
        lines.push(`  ${x.service_name}: ${x.state}${x.exit_code === null ? "" : ` (exit ${x.exit_code})`}${ports}`)
      }
      if (s.truncated) lines.push(`  and ${s.count - s.services.length} more (service_list)`)
    }
  }
  if (r.secrets.length > 0) lines.push(`Secrets: ${r.secrets.join(", ")}`)
  if (r.snapshots.length > 0) lines.push(`Snapshots: ${r.snapshots.join(", ")}`)
  if (r.reset_count > 0) lines.push(`Resets: ${r.reset_count} (last at ${r.last_reset_at}; commands before it are not listed)`)
  if (r.forked_from !== null) lines.push(`Forked from: ${r.forked_from}`)
  for (const note of r.notes) lines.push(`Not shown: ${shown(note)}`)
  return lines.join("\n") + "\n"
}

export const summarizeWorkspace = (workspaceId: string) =>
  Effect.gen(function*() {
    const ws = yield* WorkspaceManager
    const config = yield* PyroConfig
    const status = yield* ws.status(workspaceId)
    const journal = yield* readJournal(workspacePaths(config.stateDir, workspaceId))
    const notes: Array<string> = []
    const stopped = "the workspace's VM is not running, and a summary never starts it: " +
      "changed files and services are read from a running VM only"
    const guest = status.state === "started"
      ? yield* ws.withGuest(workspaceId, (guest) => fromGuest(guest, notes), { boot: false }).pipe(
        // Its VM may stop between the status and the connection.
        Effect.catchAll(() => Effect.sync(() => (notes.push(stopped), { files: null, services: null })))
      )
      : (notes.push(stopped), { files: null, services: null })
    const report: Report = {
      ...workspaceIdentity(status),
      commands: commandsOf(journal),
      ...guest,
      secrets: status.secrets.map((s) => s.name),
      snapshots: status.snapshots,
      reset_count: status.reset_count,
      last_reset_at: status.last_reset_at,
      forked_from: status.forked_from,
      notes
    }
    return { ...report, text: summaryText(report) } satisfies WorkspaceReport
  })
