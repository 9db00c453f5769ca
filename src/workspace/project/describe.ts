/** A project source in words: for `workspace_create`'s description, a seed's origin_ref, and the operator's log. */
import type { ProjectSourceShape } from "../../services/ProjectSource.js"

/** "the Git-tracked files of /src/app", "the Git-tracked files of file:///r at ref v1 (commit abc1234)"; undefined for none. */
export const describeProjectSource = (source: ProjectSourceShape): string | undefined => {
  switch (source.kind) {
    case "none":
      return undefined
    case "project_path":
      return `the Git-tracked files of ${source.root}`
    case "repo_url":
      return `the Git-tracked files of ${source.url}${source.ref === null ? "" : ` at ref ${source.ref}`} ` +
        `(commit ${source.commit.slice(0, 7)})`
  }
}

/** What a seed from this source records as `origin_ref`: the checkout's path, or `URL@commit`. */
export const projectOriginRef = (source: Exclude<ProjectSourceShape, { kind: "none" }>): string =>
  source.kind === "project_path" ? source.root : `${source.url}@${source.commit}`

/**
 * `workspace_create`'s description when the server has a project: the
 * contract's sentence first (docs/public-contract.md), then what the tool
 * says anyway. Without a project, the description as it is.
 */
export const createDescriptionWith = (description: string, source: ProjectSourceShape): string => {
  const described = describeProjectSource(source)
  return described === undefined
    ? description
    : `Create and start a persistent workspace. If \`seed_path\` is omitted, the server seeds from ${described}. ${description}`
}
