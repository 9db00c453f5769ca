/**
 * Progress on stderr: one `[scope] phase=... key=value` line per step, as the
 * contract shows; work of known size (downloads, builds) also gets a bar,
 * redrawn in place on a terminal and printed at most every 10 % otherwise.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { formatProgressLine, Progress, type ProgressEvent } from "../services/Progress.js"
import { ansiAllowed } from "./terminal.js"

const BAR_WIDTH = 24

export const progressBar = (fraction: number) => {
  const clamped = Math.min(1, Math.max(0, fraction))
  const filled = Math.round(clamped * BAR_WIDTH)
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${Math.floor(clamped * 100).toString().padStart(3)}%`
}

export const makeStderrProgress = (stream: NodeJS.WriteStream = process.stderr) => {
  // The bar is redrawn in place with escapes only for a person at a terminal.
  const tty = ansiAllowed(stream)
  let lastKey = ""
  let lastDecile = -1
  let barShown = false
  const clearBar = () => {
    if (barShown) stream.write("\r\x1b[K")
    barShown = false
  }
  const report = (event: ProgressEvent) =>
    Effect.sync(() => {
      const line = formatProgressLine(event)
      const key = `${event.scope}/${event.phase}/${event.fields?.["step"] ?? ""}/${event.fields?.["layer"] ?? ""}`
      if (key !== lastKey) {
        clearBar()
        stream.write(`${line}\n`)
        lastKey = key
        lastDecile = -1
      }
      if (event.fraction === undefined) return
      if (tty) {
        stream.write(`\r\x1b[K  ${progressBar(event.fraction)}`)
        barShown = event.fraction < 1
        if (!barShown) stream.write("\n")
      } else {
        const decile = Math.floor(event.fraction * 10)
        if (decile > lastDecile && decile > 0) {
          stream.write(`  ${progressBar(event.fraction)}\n`)
          lastDecile = decile
        }
      }
    })
  return Layer.succeed(Progress, { report })
}
