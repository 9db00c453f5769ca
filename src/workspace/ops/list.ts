/** workspace_list: the workspaces that have not expired, filtered by labels, most recently active first. */
import * as Effect from "effect/Effect"
import * as Order from "effect/Order"
import type { WorkspaceSummary } from "../../contract/workspace/lifecycle.js"
import type { WorkspaceListEntry, WorkspaceListInput, WorkspaceListResult } from "../../contract/workspace/manage.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"

/** What identifies a workspace to a person (a listing's entry, a summary's head). */
export const workspaceIdentity = (s: WorkspaceSummary): WorkspaceListEntry => ({
  workspace_id: s.workspace_id,
  name: s.name,
  labels: s.labels,
  state: s.state,
  environment: s.environment,
  created_at: s.created_at,
  last_activity_at: s.last_activity_at,
  expires_at: s.expires_at
})

const hasLabels = (s: WorkspaceSummary, wanted: Readonly<Record<string, string>>) =>
  Object.entries(wanted).every(([key, value]) => Object.hasOwn(s.labels, key) && s.labels[key] === value)

export const listWorkspaces = (input: WorkspaceListInput) =>
  Effect.flatMap(WorkspaceManager, (ws) => ws.list).pipe(
    Effect.map((all): WorkspaceListResult => {
      const workspaces = all
        .filter((s) => hasLabels(s, input.labels ?? {}))
        // ISO times sort as strings (localeCompare would load ICU's collator first, ~20 ms).
        .sort((a, b) => Order.string(b.last_activity_at, a.last_activity_at) || Order.string(b.created_at, a.created_at))
        .map(workspaceIdentity)
      return { count: workspaces.length, workspaces }
    })
  )
