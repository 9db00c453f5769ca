import * as Data from "effect/Data"

/** A project source that cannot be used, found when the server starts (`pyro mcp serve` then exits). */
export class ProjectSourceError extends Data.TaggedError("ProjectSourceError")<{ readonly detail: string }> {
  override get message() {
    return `project source: ${this.detail}`
  }
}
