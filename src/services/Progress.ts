/**
 * Progress of long work (downloads, builds, boots) for whoever is watching: the
 * CLI prints `[scope] phase=... key=value` lines on stderr, the MCP server and
 * the SDK stay quiet unless asked.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface ProgressEvent {
  /** What is being done: "pull", "kernel", "agent", "boot". */
  readonly scope: string
  readonly phase: string
  readonly fields?: Readonly<Record<string, string | number>>
  /** 0..1 when the amount of work is known (downloads). */
  readonly fraction?: number
}

export class Progress extends Context.Tag("pyro/Progress")<Progress, {
  readonly report: (event: ProgressEvent) => Effect.Effect<void>
}>() {}

export const ProgressSilent = Layer.succeed(Progress, { report: () => Effect.void })

export const report = (event: ProgressEvent) => Effect.flatMap(Progress, (p) => p.report(event))

export const formatProgressLine = (event: ProgressEvent) =>
  [
    `[${event.scope}]`,
    `phase=${event.phase}`,
    ...Object.entries(event.fields ?? {}).map(([k, v]) => `${k}=${v}`)
  ].join(" ")
