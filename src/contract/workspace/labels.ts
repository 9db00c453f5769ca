/**
 * A workspace's name and labels: what a person finds it by. Both are only
 * for people and filters; the workspace_id stays its one stable identity.
 */
import * as Schema from "effect/Schema"

export const MAX_WORKSPACE_NAME_CHARS = 64
export const MAX_LABELS = 32
export const MAX_LABEL_VALUE_CHARS = 128
/** Kubernetes-ish: lowercase, digits, '.', '_' and '-', starting with a letter or digit, at most 63. */
export const LABEL_KEY_PATTERN = "^[a-z0-9][a-z0-9._-]{0,62}$"

/** Control, format (bidi overrides, zero-width), unassigned and private-use characters, and line separators. */
const UNPRINTABLE = /[\p{C}\u2028\u2029]/u

/** Why `text` is not printable text of at most `max` characters, or undefined when it is. */
const printableProblem = (text: string, max: number) => {
  if ([...text].length > max) return `must be at most ${max} characters`
  if (UNPRINTABLE.test(text)) return "must be printable text (no control or format characters)"
  return undefined
}

export const WorkspaceName = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.length === 0) return "must not be empty"
    if (s.trim() !== s) return "must not start or end with white space"
    return printableProblem(s, MAX_WORKSPACE_NAME_CHARS) ?? true
  }, { jsonSchema: { minLength: 1, maxLength: MAX_WORKSPACE_NAME_CHARS } }),
  Schema.annotations({
    description: `A name for people (1 to ${MAX_WORKSPACE_NAME_CHARS} printable characters; need not be unique). ` +
      "The workspace_id stays its identity."
  })
)

const labelKeyRule = new RegExp(LABEL_KEY_PATTERN)

export const LabelKey = Schema.String.pipe(
  Schema.pattern(labelKeyRule, {
    message: () => "must be a label key: 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
  })
)

export const LabelValue = Schema.String.pipe(
  Schema.filter((s) => printableProblem(s, MAX_LABEL_VALUE_CHARS) ?? true, {
    jsonSchema: { maxLength: MAX_LABEL_VALUE_CHARS }
  })
)

/**
 * The keys are checked by a filter, not by the record's key schema: a record
 * drops keys its key schema refuses unless excess properties are errors, and
 * the CLI decodes without that.
 */
const labelRecord = (description: string) =>
  Schema.Record({ key: Schema.String, value: LabelValue }).pipe(
    Schema.filter((map) => {
      const keys = Object.keys(map)
      if (keys.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`
      const bad = keys.find((k) => !labelKeyRule.test(k))
      return bad === undefined ||
        `${JSON.stringify(bad.slice(0, 80))}: a label key is 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`
    }, { jsonSchema: { propertyNames: { pattern: LABEL_KEY_PATTERN } } }),
    Schema.annotations({ description })
  )

export const Labels = labelRecord(
  `Labels {key: value} to find the workspace by (workspace_list's labels filter): at most ${MAX_LABELS}; keys ` +
    `${LABEL_KEY_PATTERN}, values at most ${MAX_LABEL_VALUE_CHARS} printable characters (may be empty).`
)
export type Labels = typeof Labels.Type

export const LabelFilter = labelRecord("Only workspaces that have every one of these labels, with these values.")
